"""Bearer-token authentication of the API (djangorestframework-simplejwt)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings


class CachedUserJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication with the token's user kept in the cache for
    `JWT_USER_CACHE_SECONDS` (default 60; 0 turns the cache off).

    Every API request otherwise costs one `auth_user` query. A user who is deactivated or
    deleted loses access within that many seconds (the cached copy is re-read after it).
    """

    def get_user(self, validated_token: Any) -> Any:
        ttl = settings.JWT_USER_CACHE_SECONDS
        if ttl <= 0:
            return super().get_user(validated_token)
        key = f"jwt-user:{validated_token.get(api_settings.USER_ID_CLAIM)}"
        user = cache.get(key)
        if user is None:
            user = super().get_user(validated_token)  # raises AuthenticationFailed (unknown, inactive)
            cache.set(key, user, ttl)
        return user


class CachedUserJWTScheme(SimpleJWTScheme):
    """Documents `CachedUserJWTAuthentication` as the same bearer scheme (`jwtAuth`)."""

    target_class = "crm.authentication.CachedUserJWTAuthentication"
