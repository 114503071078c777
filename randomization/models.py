"""Trials hosted on the PRESENT cohort and their arms.

The randomization helper-owned parts (criteria, screenings, sequences,
allocations, TwiCs offer/decision, treatment start) build on these two models.
"""

from __future__ import annotations

import pgtrigger
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.audit import track

NO_DELETE = pgtrigger.Protect(name="no_delete", operation=pgtrigger.Delete)


class TrialStatus(models.TextChoices):
    SETUP = "setup", _("In set-up")
    RECRUITING = "recruiting", _("Recruiting")
    CLOSED = "closed", _("Closed to recruitment")


@track()
class Trial(models.Model):
    """A TwiCs trial inside the cohort (PRESENT hosts several; BLEND is the first)."""

    code = models.SlugField(
        _("code"),
        max_length=20,
        unique=True,
        help_text=_("Also the trial-number prefix, e.g. BLEND-017."),
    )
    name = models.CharField(_("name"), max_length=200)
    registration = models.CharField(_("registrations"), max_length=200, blank=True)
    protocol_version = models.CharField(_("protocol version"), max_length=20)
    target_size = models.PositiveIntegerField(_("target size"))
    status = models.CharField(
        _("status"), max_length=12, choices=TrialStatus.choices, default=TrialStatus.SETUP
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("trial")
        verbose_name_plural = _("trials")
        constraints = [
            models.CheckConstraint(condition=Q(target_size__gt=0), name="trial_target_positive")
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return self.code


@track()
class Arm(models.Model):
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="arms")
    code = models.SlugField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    ratio = models.PositiveSmallIntegerField(_("allocation ratio weight"), default=1)
    is_intervention = models.BooleanField(
        _("intervention arm"),
        default=False,
        help_text=_("TwiCs: only this arm is offered the intervention."),
    )

    class Meta:
        ordering = ["trial", "-is_intervention", "code"]
        verbose_name = _("arm")
        verbose_name_plural = _("arms")
        constraints = [
            models.UniqueConstraint(fields=["trial", "code"], name="arm_code_unique_per_trial"),
            models.CheckConstraint(condition=Q(ratio__gt=0), name="arm_ratio_positive"),
        ]
        triggers = [NO_DELETE]

    def __str__(self) -> str:
        return f"{self.trial.code}:{self.code}"
