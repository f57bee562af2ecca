from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The periodic commands' machinery: their run records (`CommandRun`), recording a run, telling
    a live run from a killed one, and claiming rows of work."""

    name = "jobs"
    verbose_name = "Procesos automáticos"
