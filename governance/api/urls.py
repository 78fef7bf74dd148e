from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("gate-policies", views.GatePolicyViewSet, basename="gate-policy")
router.register("gate-checks", views.GateCheckViewSet, basename="gate-check")
router.register("change-requests", views.ChangeRequestViewSet, basename="change-request")
router.register("votes", views.VoteViewSet, basename="vote")
router.register("cab-meetings", views.CABMeetingViewSet, basename="cab-meeting")
router.register("agenda-items", views.AgendaItemViewSet, basename="agenda-item")
router.register("freeze-windows", views.FreezeWindowViewSet, basename="freeze-window")
router.register("freeze-exceptions", views.FreezeExceptionViewSet, basename="freeze-exception")

urlpatterns = [
    path(
        "releases/<int:pk>/why-blocked/",
        views.ReleaseBlockersView.as_view(),
        name="release-why-blocked",
    ),
    path("releases/<int:pk>/risk/", views.ReleaseRiskView.as_view(), name="release-risk"),
    path(
        "releases/<int:pk>/risk/override/",
        views.ReleaseRiskOverrideView.as_view(),
        name="release-risk-override",
    ),
    path(
        "releases/<int:pk>/break-glass/",
        views.ReleaseBreakGlassListView.as_view(),
        name="release-break-glass",
    ),
    path(
        "releases/<int:pk>/break-glass/<int:glass_pk>/",
        views.ReleaseBreakGlassDetailView.as_view(),
        name="release-break-glass-detail",
    ),
    path(
        "releases/<int:pk>/break-glass/<int:glass_pk>/review/",
        views.ReleaseBreakGlassReviewView.as_view(),
        name="release-break-glass-review",
    ),
    path(
        "releases/<int:pk>/break-glass/<int:glass_pk>/revoke/",
        views.ReleaseBreakGlassRevokeView.as_view(),
        name="release-break-glass-revoke",
    ),
    *router.urls,
]
