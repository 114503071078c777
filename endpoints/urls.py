app_name = "endpoints"

urlpatterns: list = []
