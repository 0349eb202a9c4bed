"""Forms for the dashboard's pages: they parse input; the services decide what is allowed.

A service refuses with a ValidationError (keyed by field when it comes from `full_clean()`);
`ServiceForm.add_service_error` puts it beside the field it is about, or above the form.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from deployments.capacity import DEFAULT_INSTANCE_TYPE, INSTANCE_TYPE_CHOICES
from deployments.models import AwsAccount, Cluster

MAX_INSTANCES = 100


class ServiceForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def add_service_error(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, messages in error.message_dict.items():
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
