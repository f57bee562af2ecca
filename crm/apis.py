"""`POST /auth/signin`: the project's own endpoint (the health check is sales/health.py)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken

from crm.errors import ApiError
from crm.fields import StrictCharField
from crm.parsers import require_json_object
from crm.schema import error_example, error_responses, ok


class SigninApi(APIView):
    """`POST /auth/signin`: exchange a username and password for a bearer access token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "signin"

    class SigninInputSerializer(serializers.Serializer):
        username = StrictCharField(max_length=150)
        password = StrictCharField(max_length=128, trim_whitespace=False)

    class SigninOutputSerializer(serializers.Serializer):
        access_token = serializers.CharField()
        token_type = serializers.CharField()
        expires_in = serializers.IntegerField(help_text="Segundos de validez del token")

    @extend_schema(
        request=SigninInputSerializer,
        responses={
            200: ok(SigninOutputSerializer, "Credenciales correctas: el token de acceso"),
            **error_responses(
                400,
                401,
                413,
                415,
                429,
                specific={
                    400: (
                        "Falta el usuario o la contraseña, o no son texto",
                        [
                            error_example(
                                400,
                                "Sin usuario ni contraseña",
                                "La solicitud contiene datos inválidos",
                                {"username": ["Este campo es requerido."], "password": ["Este campo es requerido."]},
                            ),
                        ],
                    ),
                    401: (
                        "Usuario o contraseña incorrectos, o usuario inactivo",
                        [
                            error_example(401, "Credenciales incorrectas", "Usuario o contraseña incorrectos"),
                        ],
                    ),
                },
            ),
        },
        auth=[],
        tags=["auth"],
        summary="Iniciar sesión y obtener un token de acceso",
        description=(
            "Cambia usuario y contraseña por un token de acceso (JWT) para la cabecera "
            "`Authorization: Bearer <access_token>`, válido `expires_in` segundos. Los intentos se "
            "limitan por dirección del cliente (429)."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = self.SigninInputSerializer(data=require_json_object(request))
        serializer.is_valid(raise_exception=True)
        user = authenticate(
            request,
            username=serializer.validated_data["username"],
            password=serializer.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise ApiError("Usuario o contraseña incorrectos", status_code=401)
        token = AccessToken.for_user(user)
        lifetime = int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds())
        return Response({"access_token": str(token), "token_type": "Bearer", "expires_in": lifetime})
