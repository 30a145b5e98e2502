"""The account's verification page: ask for a link or a code, type the code."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator


class VerifyRequestForm(forms.Form):
    channel = forms.ChoiceField(choices=[("email", "email"), ("sms", "sms")], widget=forms.HiddenInput)


class PhoneCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the text message",
        max_length=12,
        validators=[RegexValidator(r"^[0-9 ]+$", "The code is six digits.")],
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
