"""Routes of the billing API (service orders); with and without a trailing slash."""
urlpatterns: list = []
