"""End-to-end demo of the CRM backend against the local invoice-mifact stand-in (`make demo`).

What it does (docs/api.md "Endpoints"):

1. Makes a throw-away folder with its own SQLite database and MEDIA_ROOT, picks two free ports on
   127.0.0.1, and runs every Django command with a hermetic environment (`ENV_FILE` empty, so
   the developer's `.env` is not read; DEBUG on; a fixed SECRET_KEY).
2. `manage.py migrate`, `manage.py create_demo_user`; starts the invoice-mifact stand-in
   (`python -m devtools.mifact_standin`) and
   `manage.py runserver --noreload` as subprocesses and waits for both to answer.
3. Signs in (`POST /auth/signin`), creates opportunities A and B (`POST /opportunity`), and sends
   the section 8 bodies with `PUT /opportunity/update-opportunity-procces/<id>`:
   8.1 (main data + appointment) and 8.2 (direct invoice) on A, 8.3 (service order 456) on B.
4. Switches O.S 456 to invoiced on the stand-in, runs `manage.py poll_invoices`; then voids and
   reissues its comprobante on the stand-in and runs the poller's follow-up check, then reads both
   opportunities, their attachments and service orders back, downloads one attachment, and
   prints a report.

Exit status: 0 when B ends in *Cierre ganado* / `factura_directa` with attachments (and A was
closed by its direct invoice); 1 with a message on any failed step; 130 on Ctrl-C. The
subprocesses are always stopped and the throw-away folder removed. Needs only `requests`
besides the project (run it with the project's virtualenv python).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import requests
from demo_reading import HEAD_ID, HTTP_TIMEOUT, SERVICE_ORDER_ID, DemoError, DemoReading, say

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devtools.harness import MANAGE, PYTHON, Workspace, free_port, hermetic_env, mifact_standin_argv

DEMO_USER, DEMO_PASSWORD = "demo", "demo-clinica-2026"
MIFACT_USER, MIFACT_PASSWORD = "admin-demo", "mifact-demo-secret"
#: Seconds to wait for a subprocess to answer over HTTP, and for a management command to end.
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 60.0


def step(text: str) -> None:
    say(f"\n==> {text}")


class Demo(DemoReading):
    """One run of the demo; `run()` does everything, `close()` always cleans up."""

    def __init__(self) -> None:
        self.workspace = Workspace("crm-demo-", error=DemoError)
        self.workdir = self.workspace.dir
        self.api_port = free_port()
        self.mifact_port = free_port(self.api_port)
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.mifact = f"http://127.0.0.1:{self.mifact_port}/api"
        self.env = self._environment()
        self.http = requests.Session()
        self.token = ""

    def _environment(self) -> dict[str, str]:
        # Hermetic: the developer's .env is not read (values below win anyway).
        return hermetic_env(
            {
                "DEBUG": "true",
                "SECRET_KEY": "demo-secret-key-only-for-make-demo-0123456789",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": f"sqlite:///{self.workdir / 'demo.sqlite3'}",
                **self.workspace.files_env,
                "URL_INVOICE_MIFACT_V3": self.mifact,
                "USERNAME_ADMIN": MIFACT_USER,
                "PASSWORD_ADMIN": MIFACT_PASSWORD,
                "INVOICE_MIFACT_USERNAME": "",
                "INVOICE_MIFACT_PASSWORD": "",
                "INVOICE_DOWNLOAD_ALLOWED_HOSTS": "",
                "URL_SV": "",  # SV sync off
                "LOG_LEVEL": "WARNING",
            }
        )

    # -- subprocesses (devtools/harness.py) ------------------------------------------------------

    def manage(self, *args: str) -> str:
        """Run `manage.py <args>` to completion; return its output. Raises DemoError on failure."""
        return self.workspace.manage(self.env, *args, timeout=COMMAND_TIMEOUT)

    def wait_until_up(self, name: str, url: str) -> None:
        self.workspace.wait_http(name, url, timeout=START_TIMEOUT)

    def close(self) -> None:
        """Stop every subprocess and remove the throw-away folder."""
        self.http.close()
        self.workspace.close()

    # -- HTTP ----------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, expect: int = 200, body: Any = None) -> Any:
        """Call the CRM API with the bearer token; return the JSON. Raises DemoError on another status."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self.http.request(method, f"{self.api}{path}", json=body, headers=headers, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            raise DemoError(f"{method} {path} failed: {exc}") from exc
        if response.status_code != expect:
            raise DemoError(
                f"{method} {path} answered {response.status_code} (expected {expect}): {response.text[:1000]}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise DemoError(f"{method} {path} did not answer JSON: {response.text[:300]}") from exc

    def put_process(self, label: str, opportunity_id: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.call("PUT", f"/opportunity/update-opportunity-procces/{opportunity_id}", body=body)
        if not answer.get("success"):
            raise DemoError(f"PUT {label} did not report success: {answer}")
        opportunity = answer["opportunity"]
        say(
            f"    {label}: 200 stage={opportunity['stage']!r} "
            f"cFacturacionSubEstado={opportunity['cFacturacionSubEstado']!r} isPresaved={opportunity['isPresaved']}"
        )
        return opportunity

    # -- the demo ------------------------------------------------------------------------------

    def run(self) -> None:
        started = time.monotonic()
        say(f"Throw-away folder: {self.workdir}")
        say(f"CRM API: {self.api}   invoice-mifact stand-in: {self.mifact}")

        step("manage.py migrate")
        self.manage("migrate", "--noinput")
        say("    database ready")
        step("manage.py create_demo_user")
        say("    " + self.manage("create_demo_user", "--username", DEMO_USER, "--password", DEMO_PASSWORD))

        step("starting the invoice-mifact stand-in and the API server")
        self.workspace.spawn(
            "mifact_standin", mifact_standin_argv(self.mifact_port, MIFACT_USER, MIFACT_PASSWORD), self.env
        )
        self.workspace.spawn(
            "runserver", [PYTHON, str(MANAGE), "runserver", "--noreload", f"127.0.0.1:{self.api_port}"], self.env
        )
        self.wait_until_up("mifact_standin", f"{self.mifact}/_standin/state")
        self.wait_until_up("runserver", f"{self.api}/health")
        say("    both answer (/health is ok)")

        step("POST /auth/signin")
        signin = self.call("POST", "/auth/signin", body={"username": DEMO_USER, "password": DEMO_PASSWORD})
        self.token = signin["access_token"]
        say(f"    got a {signin.get('token_type', 'Bearer')} token valid {signin.get('expires_in')} s")

        step("POST /opportunity (A and B)")
        a = self.call("POST", "/opportunity", expect=201, body={"name": "Demo A - consulta dermatología"})
        b = self.call("POST", "/opportunity", expect=201, body={"name": "Demo B - procedimiento con O.S"})
        say(f"    A={a['id']} stage={a['stage']!r}   B={b['id']} stage={b['stage']!r}")

        step("PUT update-opportunity-procces (the example bodies)")
        main_a = {
            "cLastNameFather": "Quispe",
            "cLastNameMother": "Huamán",
            "cCustomerDocumentType": "DNI",
            "cCustomerDocument": "45678912",
            "cPatientsname": "Lucía Quispe Huamán",
            "cPatientsPaternalLastName": "Quispe",
            "cPatientsMaternalLastName": "Huamán",
            "cPatientDocument": "45678912",
            "cPatientDocumentType": "DNI",
        }
        after_81 = self.put_process(
            "8.1 on A (main data + appointment)",
            a["id"],
            {
                **main_a,
                "cAppointment": "15:30 - 16:00",
                "cDateReservation": "2026-03-02",
                "cDoctor": "Dra. Rosa Salazar",
                "cEnvironment": "Consultorio 3",
                "cSpecialty": "Dermatología",
                "cTariff": "Consulta particular",
                "reservationId": 98765,
                "cFacturas": {"comprobante_soles": None, "comprobante_dolares": None},
            },
        )
        direct_url = f"{self.mifact}/files/factura-directa-F001-000123.pdf"
        after_82 = self.put_process(
            "8.2 on A (direct invoice)",
            a["id"],
            {
                "cClinicHistory": "HC-000123",
                "cFacturas": {"comprobante_soles": direct_url, "comprobante_dolares": None},
            },
        )
        after_83 = self.put_process(
            "8.3 on B (service order)",
            b["id"],
            {
                "cPatientsname": "Carlos Mendoza Ríos",
                "cPatientDocumentType": "DNI",
                "cPatientDocument": "40123456",
                "cClinicHistory": "HC-000456",
                "cOrdenesServicio": [SERVICE_ORDER_ID],
                "cOrdenesServicioMetadata": {
                    str(SERVICE_ORDER_ID): {"descripcion": "Procedimiento láser", "numero_os": "OS-2026-0456"}
                },
            },
        )
        if after_81["stage"] == "Cierre ganado":
            raise DemoError("8.1 must not close the opportunity")
        if (after_82["stage"], after_82["cFacturacionSubEstado"]) != ("Cierre ganado", "factura_directa"):
            raise DemoError(
                "8.2 should close A with factura_directa, got "
                f"{after_82['stage']!r}/{after_82['cFacturacionSubEstado']!r}"
            )
        if (after_83["stage"], after_83["cFacturacionSubEstado"]) != (
            "Cierre ganado",
            "orden_servicio_pendiente_factura",
        ):
            raise DemoError(
                "8.3 should leave B pending its invoice, got "
                f"{after_83['stage']!r}/{after_83['cFacturacionSubEstado']!r}"
            )

        step(f"invoicing O.S {SERVICE_ORDER_ID} on the stand-in (POST /api/_standin/...)")
        self.standin_post(
            f"/_standin/service-order/{SERVICE_ORDER_ID}/invoice",
            {"soles": True, "dolares": True, "invoice_result_head_id": HEAD_ID},
        )

        step("manage.py poll_invoices")
        summary = self.manage("poll_invoices")
        say("    " + summary.splitlines()[-1])
        if "invoiced=1" not in summary:
            raise DemoError(f"poll_invoices did not complete O.S {SERVICE_ORDER_ID}: {summary}")

        step(f"the clinic voids O.S {SERVICE_ORDER_ID}'s comprobante and reissues it (head {HEAD_ID + 1})")
        self.standin_post(
            f"/_standin/service-order/{SERVICE_ORDER_ID}/invoice",
            {"soles": True, "dolares": True, "invoice_result_head_id": HEAD_ID + 1},
        )
        # The follow-up check is hourly (INVOICE_FOLLOW_UP_INTERVAL_MINUTES): age the O.S's last
        # check by 61 minutes, as if the next follow-up were due.
        self.manage(
            "shell",
            "-v",
            "0",
            "-c",
            "import datetime as dt; from django.utils import timezone; "
            "from billing.models import OpportunityServiceOrder as O; "
            "O.objects.update(last_checked_at=timezone.now() - dt.timedelta(minutes=61))",
        )
        summary = self.manage("poll_invoices")
        say("    " + summary.splitlines()[-1])
        if "replaced=1" not in summary:
            raise DemoError(f"poll_invoices did not follow the reissue of O.S {SERVICE_ORDER_ID}: {summary}")

        step("reading everything back")
        report = [self.collect("A", a["id"]), self.collect("B", b["id"])]
        attachments_b = report[1]["attachments"]
        if not attachments_b:
            raise DemoError("B has no attachments after the poll")
        sample = attachments_b[0]
        pdf = self.download(sample["downloadUrl"])
        say(f"    downloaded B attachment {sample['id']} ({len(pdf)} bytes, starts with {pdf[:8]!r})")

        self.print_report(report, time.monotonic() - started)
        self.verify(report)


def _interrupt_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # run the same clean-up as Ctrl-C


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    demo = Demo()
    try:
        demo.run()
    except DemoError as exc:
        say(f"\nDEMO FAILED: {exc}")
        for name in demo.workspace.processes:
            say(f"\n--- last lines of {name} ---\n{demo.workspace.log_tail(name)}")
        return 1
    except KeyboardInterrupt:
        say("\nDemo interrupted.")
        return 130
    except Exception:  # a bug or an unexpected answer: show it, still clean up
        import traceback

        say("\nDEMO FAILED with an unexpected error:\n" + traceback.format_exc())
        for name in demo.workspace.processes:
            say(f"\n--- last lines of {name} ---\n{demo.workspace.log_tail(name)}")
        return 1
    finally:
        demo.close()
    say("DEMO OK: B ended in 'Cierre ganado' / 'factura_directa' with its invoice PDFs attached.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
