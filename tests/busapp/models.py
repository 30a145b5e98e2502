"""Observable effects of the test consumers: one row per handled message."""

from django.db import models


class Effect(models.Model):
    consumer = models.CharField(max_length=100)
    key = models.CharField(max_length=100)
    message_id = models.CharField(max_length=64)
    seq = models.IntegerField(default=0)
    aggregate = models.CharField(max_length=100, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
