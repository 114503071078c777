app_name = "cohort"

urlpatterns: list = []
