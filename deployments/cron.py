"""What `manage.py rqcron deployments.cron` schedules: the tick, every TINYSTACKS_POLL_SECONDS."""

from __future__ import annotations

from django.conf import settings
from rq.cron import register

from deployments.jobs import tick

register(
    tick,
    queue_name="default",
    interval=max(1, round(settings.TINYSTACKS_POLL_SECONDS)),
    job_timeout=300,
)
