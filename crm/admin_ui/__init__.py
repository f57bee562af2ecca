"""Helpers every app's admin uses: times for clinic staff (`display`), read-only lists (`readonly`)
and the accent-blind search box (`search`)."""
