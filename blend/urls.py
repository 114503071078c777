from django.conf import settings
from django.conf.urls.i18n import i18n_patterns  # noqa: F401
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views

api_v1 = [
    path("", include("core.api_urls")),
    path("", include("cohort.api_urls")),
    path("", include("randomization.api_urls")),
    path("", include("crf.api_urls")),
    path("", include("endpoints.api_urls")),
]

urlpatterns = [
    path("", include("core.urls")),
    path("cohort/", include("cohort.urls")),
    path("trials/", include("randomization.urls")),
    path("crf/", include("crf.urls")),
    path("reports/", include("endpoints.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("health/", core_views.health, name="health"),
]

handler403 = "core.views.error_403"
handler404 = "core.views.error_404"
handler500 = "core.views.error_500"

if settings.DEBUG:  # pragma: no cover - development only
    pass
