"""Forms for the dashboard's pages: they parse input; the services decide what is allowed.

A service refuses with a ValidationError (keyed by field when it comes from `full_clean()`);
`ServiceForm.add_service_error` puts it beside the field it is about, or above the form.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from deployments.capacity import (
    DEFAULT_INSTANCE_TYPE,
    INSTANCE_TYPE_CHOICES,
    task_size_suggestions,
)
from deployments.models import MAX_TASKS, App, AwsAccount, Cluster, Membership, ScalingSettings
from deployments.validators import MAX_SECRET_NAME

MAX_INSTANCES = 100


class ServiceForm(forms.Form):
    # Where a service's error belongs when it is not keyed by one of the form's fields: by the
    # model field it names (`memory` → `size`), or by its code when it names none (`image`).
    error_fields: ClassVar[dict[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_service_error(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            codes = {e.code for e in error.error_list}
            code = codes.pop() if len(codes) == 1 else None
            self.add_error(self.error_fields.get(code) if code else None, error)
            return
        for field, messages in error.message_dict.items():
            field = self.error_fields.get(field, field)
            self.add_error(field if field in self.fields else None, messages)


def _instances_field(label: str, initial: int) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=0, max_value=MAX_INSTANCES, initial=initial)


class NamedForm(ServiceForm):
    """A form naming a new row of the team; `taken` holds the team's rows of that kind."""

    what = "a row"

    def __init__(self, *args: Any, taken: QuerySet[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken = taken

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        if self.taken.filter(name=name).exists():
            raise ValidationError(f"This team already has {self.what} named {name}.")
        return name


class AssumeRoleAccountForm(NamedForm):
    what = "an AWS account"
    name = forms.CharField(
        max_length=40,
        help_text="Lowercase letters, digits and hyphens, e.g. production.",
    )
    region = forms.CharField(max_length=25, initial="us-east-1", help_text="e.g. eu-west-1")
    role_arn = forms.CharField(
        label="Role ARN",
        max_length=600,
        help_text="The role you will create for TinyStacks, e.g. "
        "arn:aws:iam::123456789012:role/TinyStacksAccess.",
    )


class AccountChoiceField(forms.ModelChoiceField[AwsAccount]):
    def label_from_instance(self, obj: AwsAccount) -> str:
        return f"{obj.name} · {obj.region} · {obj.get_mode_display()}"


class ClusterCreateForm(NamedForm):
    what = "a cluster"
    name = forms.CharField(
        max_length=40, help_text="Lowercase letters, digits and hyphens, e.g. main."
    )
    account = AccountChoiceField(
        queryset=AwsAccount.objects.none(), label="AWS account", empty_label="Choose an account"
    )
    region = forms.CharField(
        max_length=25, required=False, help_text="Leave empty to use the account's region."
    )
    instance_type = forms.ChoiceField(choices=INSTANCE_TYPE_CHOICES, initial=DEFAULT_INSTANCE_TYPE)
    min_instances = _instances_field("Minimum", 2)
    desired_instances = _instances_field("Desired", 2)
    max_instances = _instances_field("Maximum", 4)

    def __init__(
        self, *args: Any, accounts: QuerySet[AwsAccount], taken: QuerySet[Cluster], **kwargs: Any
    ) -> None:
        super().__init__(*args, taken=taken, **kwargs)
        field = self.fields["account"]
        assert isinstance(field, AccountChoiceField)
        field.queryset = accounts


class ClusterResizeForm(ServiceForm):
    instance_type = forms.ChoiceField(choices=INSTANCE_TYPE_CHOICES)
    min_instances = _instances_field("Minimum", 2)
    desired_instances = _instances_field("Desired", 2)
    max_instances = _instances_field("Maximum", 4)

    @classmethod
    def for_cluster(cls, cluster: Cluster) -> ClusterResizeForm:
        return cls(
            initial={
                "instance_type": cluster.instance_type,
                "min_instances": cluster.min_instances,
                "desired_instances": cluster.desired_instances,
                "max_instances": cluster.max_instances,
            }
        )


class ClusterDeleteForm(ServiceForm):
    confirm_name = forms.CharField(label="Type the cluster's name to confirm", max_length=40)

    def __init__(self, *args: Any, cluster_name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cluster_name = cluster_name

    def clean_confirm_name(self) -> str:
        typed: str = self.cleaned_data["confirm_name"].strip()
        if typed != self.cluster_name:
            raise ValidationError(
                f"Type {self.cluster_name} exactly to delete this cluster; nothing was deleted."
            )
        return typed


# Apps


class ClusterChoiceField(forms.ModelChoiceField[Cluster]):
    def label_from_instance(self, obj: Cluster) -> str:
        return f"{obj.name} · {obj.instance_type} · {obj.region}"


TASK_SIZE_SUGGESTIONS = task_size_suggestions()
DEFAULT_TASK_SIZE = "256/512"
TASK_SIZE = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{1,9})\s*$")


class DatalistInput(forms.TextInput):
    """A text input offering suggestions (an HTML datalist) while accepting any value."""

    def __init__(self, suggestions: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suggestions = suggestions

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        datalist = f"{name}-suggestions"
        html = super().render(name, value, (attrs or {}) | {"list": datalist}, renderer)
        options = format_html_join("", '<option value="{}">{}</option>', self.suggestions)
        return format_html('{}<datalist id="{}">{}</datalist>', html, datalist, options)


class TaskSizeField(forms.CharField):
    """ "cpu/memory" (CPU units / MiB), any size EC2 allows; Fargate's sizes are suggested."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=21, widget=DatalistInput(TASK_SIZE_SUGGESTIONS), **kwargs)

    def clean(self, value: Any) -> tuple[int, int]:
        match = TASK_SIZE.match(super().clean(value))
        if not match:
            raise ValidationError(
                "Enter the task size as CPU units/MiB, e.g. 256/512 (1024 units = 1 vCPU)."
            )
        return int(match[1]), int(match[2])


class AppSettingsForm(ServiceForm):
    """The settings an app is created with and its page changes: each field defined once."""

    error_fields: ClassVar[dict[str, str]] = {"cpu": "size", "memory": "size"}
    other_fields: ClassVar[tuple[str, ...]] = ()  # a subclass's fields that are not settings

    port = forms.IntegerField(
        min_value=1, max_value=65535, initial=80, help_text="The port your container listens on."
    )
    health_check_path = forms.CharField(
        label="Health-check path",
        max_length=200,
        required=False,
        help_text="e.g. /healthz: ECS checks it from inside the container with curl or wget, so "
        "set it only if the image has one of them. Empty: no container health check.",
    )
    size = TaskSizeField(
        label="Task size",
        initial=DEFAULT_TASK_SIZE,
        help_text="CPU units/MiB per task, e.g. 256/512 or 128/256 (1024 units = 1 vCPU); it "
        "must fit on one of the cluster's instances.",
    )
    min_healthy_percent = forms.IntegerField(
        label="Minimum healthy %",
        min_value=0,
        max_value=100,
        initial=100,
        help_text="Tasks kept running during a rollout, as % of tasks.",
    )
    max_percent = forms.IntegerField(
        label="Maximum %",
        min_value=100,
        max_value=400,
        initial=200,
        help_text="Tasks allowed during a rollout, old and new together.",
    )
    circuit_breaker = forms.BooleanField(
        label="Roll back automatically when new tasks keep failing (ECS circuit breaker)",
        required=False,
        initial=True,
    )

    def app_settings(self) -> dict[str, Any]:
        """The app's settings as the services take them, the task size split in two."""
        fields = {k: v for k, v in self.cleaned_data.items() if k not in self.other_fields}
        cpu, memory = fields.pop("size")
        return fields | {"cpu": cpu, "memory": memory}


class AppCreateForm(NamedForm, AppSettingsForm):
    what = "an app"
    other_fields = ("name", "cluster")

    name = forms.CharField(
        max_length=40,
        help_text="Lowercase letters, digits and hyphens, e.g. web.",
    )
    cluster = ClusterChoiceField(
        queryset=Cluster.objects.none(),
        empty_label="Choose a cluster",
        help_text="One of the team's ready clusters.",
    )
    desired_count = forms.IntegerField(
        label="Tasks", min_value=0, max_value=MAX_TASKS, initial=2, help_text="How many to run."
    )

    def __init__(
        self, *args: Any, clusters: QuerySet[Cluster], taken: QuerySet[App], **kwargs: Any
    ) -> None:
        super().__init__(*args, taken=taken, **kwargs)
        field = self.fields["cluster"]
        assert isinstance(field, ClusterChoiceField)
        field.queryset = clusters


class AppUpdateForm(AppSettingsForm):
    """The app page's settings form; it hands `services.app_update` only what changed."""

    other_fields = ("deploy_now",)

    command = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false", "class": "mono"}),
        help_text="Run with sh -c instead of the image's own command; leave empty for that.",
    )
    rollout_timeout_seconds = forms.IntegerField(
        label="Rollout timeout (seconds)",
        min_value=60,
        max_value=24 * 60 * 60,
        help_text="TinyStacks stops following a rollout that makes no progress for this long.",
    )
    deploy_now = forms.BooleanField(
        label="Deploy the live image now with these settings", required=False
    )

    @classmethod
    def for_app(cls, app: App) -> AppUpdateForm:
        settings = [name for name in cls.base_fields if name not in (*cls.other_fields, "size")]
        initial = {name: getattr(app, name) for name in settings}
        return cls(initial=initial | {"size": f"{app.cpu}/{app.memory}"})

    def clean_command(self) -> str:
        # Browsers send a textarea's line breaks as CRLF; sh would take the CR as part of a word.
        command: str = self.cleaned_data["command"]
        return command.replace("\r\n", "\n")

    def changes(self, app: App) -> dict[str, Any]:
        """The settings that differ from `app`'s."""
        return {
            name: value
            for name, value in self.app_settings().items()
            if getattr(app, name) != value
        }


class DeployForm(ServiceForm):
    error_fields: ClassVar[dict[str, str]] = {"image": "image"}

    image = forms.CharField(
        max_length=1024,
        help_text="e.g. nginx:1.27 or ghcr.io/acme/web:2.3.1",
        widget=forms.TextInput(attrs={"placeholder": "nginx:1.27", "spellcheck": "false"}),
    )
    description = forms.CharField(
        max_length=500, required=False, help_text="Optional: what this release is about."
    )


def parse_config_lines(text: str) -> dict[str, str]:
    """`NAME=value` lines (blank lines and # comments skipped) as a mapping; the value is
    everything after the first `=`."""
    config: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, equals, value = stripped.partition("=")
        name = name.strip()
        if not equals or not name:
            raise ValidationError(f"Line {number} is not NAME=value: {stripped[:60]}")
        if name in config:
            raise ValidationError(f"{name} is set twice (line {number}).")
        config[name] = value
    return config


class ConfigForm(ServiceForm):
    error_fields: ClassVar[dict[str, str]] = {"config": "config_vars"}

    config_vars = forms.CharField(
        label="Variables",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
        help_text="One NAME=value per line. Saving makes a new release of the live image and "
        "deploys it.",
    )

    @classmethod
    def for_app(cls, app: App) -> ConfigForm:
        lines = "\n".join(f"{name}={value}" for name, value in sorted(app.config_vars.items()))
        return cls(initial={"config_vars": lines})

    def clean_config_vars(self) -> dict[str, str]:
        return parse_config_lines(self.cleaned_data["config_vars"])


class SecretForm(ServiceForm):
    """Add or replace one secret. The value is never rendered back, not even after an error."""

    name = forms.CharField(
        max_length=MAX_SECRET_NAME,
        help_text="Letters, digits and underscores, e.g. DATABASE_PASSWORD.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    value = forms.CharField(
        strip=False,
        help_text="Encrypted at once and handed to ECS through SSM Parameter Store; it is never "
        "shown again. Saving makes a new release of the live image and deploys it.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )


class ConfirmNameForm(ServiceForm):
    """A destructive action confirmed by typing the object's name."""

    what = "object"
    confirm_name = forms.CharField(max_length=40)

    def __init__(self, *args: Any, name: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = name
        self.fields["confirm_name"].label = f"Type the {self.what}'s name to confirm"

    def clean_confirm_name(self) -> str:
        typed: str = self.cleaned_data["confirm_name"].strip()
        if typed != self.name:
            raise ValidationError(
                f"Type {self.name} exactly to delete this {self.what}; nothing was deleted."
            )
        return typed


class AppDeleteForm(ConfirmNameForm):
    what = "app"


class ScalingForm(ServiceForm):
    mode = forms.ChoiceField(
        choices=[
            ("autoscaling", "Autoscale on CPU"),
            ("fixed", "A fixed number of tasks"),
        ],
        widget=forms.RadioSelect,
        label="Tasks",
    )
    desired_count = forms.IntegerField(
        label="Tasks", min_value=0, max_value=MAX_TASKS, help_text="Used when the number is fixed."
    )
    min_tasks = forms.IntegerField(label="Minimum tasks", min_value=0, max_value=MAX_TASKS)
    max_tasks = forms.IntegerField(label="Maximum tasks", min_value=0, max_value=MAX_TASKS)
    cpu_target = forms.IntegerField(
        label="Target CPU %",
        min_value=1,
        max_value=100,
        help_text="ECS adds tasks above it and removes them below it.",
    )

    @classmethod
    def for_app(cls, app: App, scaling: ScalingSettings) -> ScalingForm:
        return cls(
            initial={
                "mode": "autoscaling" if scaling.autoscaling_enabled else "fixed",
                "desired_count": app.desired_count,
                "min_tasks": scaling.min_tasks,
                "max_tasks": scaling.max_tasks,
                "cpu_target": scaling.cpu_target,
            }
        )

    def scaling_changes(self) -> dict[str, Any]:
        """Keyword arguments for `services.scaling_update`: a fixed count sets the app's desired
        count; autoscaling leaves it to Application Auto Scaling."""
        data = self.cleaned_data
        fixed = data["mode"] == "fixed"
        return {
            "autoscaling_enabled": not fixed,
            "min_tasks": data["min_tasks"],
            "max_tasks": data["max_tasks"],
            "cpu_target": data["cpu_target"],
            "desired_count": data["desired_count"] if fixed else None,
        }


class ApiTokenForm(NamedForm):
    what = "an API token"
    name = forms.CharField(max_length=60, help_text="What uses it, e.g. github-actions.")
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.DEPLOYER)
