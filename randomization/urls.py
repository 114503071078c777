app_name = "randomization"

urlpatterns: list = []
