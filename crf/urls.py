app_name = "crf"

urlpatterns: list = []
