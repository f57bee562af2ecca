"""Client of the clinic system SV (docs/api.md "Process update"; docs/api.md "SV sync").

`SvClient.update_clinic_history()` sends
`PATCH {URL_SV}/reservation/<reservationId>/clinic-history-crm` with
`{"clinicHistoryCrm": "<cClinicHistory>"}`; SV updates the reservation, its patient and its
payment. Sign-in (`POST {URL_SV}/auth/signin`), token reuse, the single re-sign-in on 401 and the
translation of `requests` errors come from `crm.outgoing.BearerApiClient`.
"""

from __future__ import annotations

from django.conf import settings

from crm.outgoing import (
    BearerApiClient,
    ServiceAuthError,
    ServiceBadResponse,
    ServiceError,
    ServiceNotConfigured,
    ServiceUnavailable,
)


class SvError(ServiceError):
    """Base error of the SV client."""


class SvNotConfigured(SvError, ServiceNotConfigured):
    """`URL_SV` is not set: SV sync is off."""


class SvUnavailable(SvError, ServiceUnavailable):
    """SV could not be reached, timed out, or answered 5xx."""


class SvAuthError(SvError, ServiceAuthError):
    """SV refused the credentials, gave no token, or refused a fresh token."""


class SvRejected(SvError, ServiceBadResponse):
    """SV answered a 4xx other than 401 (e.g. an unknown reservation)."""


def sv_configuration_problem() -> str:
    """Why SV cannot be called with the current settings (Spanish), or "" when it can: `URL_SV`
    unset (SV sync off), or no username/password (`SV_*`, falling back to `*_ADMIN`)."""
    if not settings.URL_SV:
        return "URL_SV no está configurada (sincronización con SV desactivada)"
    if not (settings.SV_USERNAME and settings.SV_PASSWORD):
        return "faltan las credenciales de SV: configure SV_USERNAME y SV_PASSWORD (o USERNAME_ADMIN y PASSWORD_ADMIN)"
    return ""


class SvClient(BearerApiClient):
    """SV client; thread-safe. `timeout` in seconds (read; connect capped at 5 s). `from_settings`
    reads `URL_SV` and `SV_USERNAME`/`SV_PASSWORD` (falling back to `*_ADMIN`), or raises
    `SvNotConfigured`."""

    service_name = "SV"
    unavailable_error = SvUnavailable
    auth_error = SvAuthError
    bad_response_error = SvRejected

    url_setting = "URL_SV"
    username_setting = "SV_USERNAME"
    password_setting = "SV_PASSWORD"
    timeout_setting = "SV_TIMEOUT"
    not_configured_error = SvNotConfigured
    configuration_problem = staticmethod(sv_configuration_problem)
    settings_options = {"retries": 0}

    def update_clinic_history(self, *, reservation_id: int, clinic_history: str) -> None:
        """`PATCH {URL_SV}/reservation/<reservation_id>/clinic-history-crm` (docs/api.md "SV sync").

        Returns on any 2xx. Raises `SvAuthError`, `SvUnavailable` (network, timeout, 5xx) or
        `SvRejected` (other 4xx).
        """
        response = self.authorized_request(
            "PATCH",
            f"/reservation/{int(reservation_id)}/clinic-history-crm",
            json={"clinicHistoryCrm": clinic_history},
        )
        if not 200 <= response.status_code < 300:
            raise SvRejected(f"SV respondió {response.status_code} para la reserva {reservation_id}")
