from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The periodic commands' machinery: their run records (`CommandRun`), recording a run, telling
    a live run from a killed one, claiming rows of work, and the outbox with the signed events."""

    name = "jobs"
    verbose_name = "Procesos automáticos"
