"""Date and time formats for people (FORMAT_MODULE_PATH): Django's own renderings in the admin
(read-only date fields, filters) use the same `dd/mm/yyyy HH:MM` as crm/admin_ui/display.py, so
one page never shows two formats. Only what is set here changes; the rest is Django's Spanish."""
