"""Team API tokens from the command line: the only place a token's secret is ever shown."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments import selectors, services
from deployments.models import Membership, Team


class Command(BaseCommand):
    help = (
        "Create, revoke and list a team's API tokens. `create` prints the new token alone on its "
        "last line; it is not stored, so it cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a token and print it.")
        create.add_argument("--team", required=True, help="The team's slug.")
        create.add_argument("--name", required=True, help="What the token is for, e.g. ci.")
        create.add_argument(
            "--role",
            choices=Membership.Role.values,
            default=Membership.Role.DEPLOYER,
            help="What the token may do, like a member's role (default: deployer).",
        )
        revoke = actions.add_parser("revoke", help="Refuse a token from now on.")
        revoke.add_argument("--team", required=True, help="The team's slug.")
        revoke.add_argument("--name", required=True, help="The token's name.")
        listing = actions.add_parser("list", help="List the team's tokens (never their secrets).")
        listing.add_argument("--team", required=True, help="The team's slug.")

    def handle(self, *args: Any, action: str, team: str, **options: Any) -> None:
        found = Team.objects.filter(slug=team).first()
        if found is None:
            raise CommandError(f"There is no team with the slug {team!r}.")
        if action == "create":
            self._create(found, options["name"], options["role"])
        elif action == "revoke":
            self._revoke(found, options["name"])
        else:
            self._list(found)

    def _create(self, team: Team, name: str, role: str) -> None:
        try:
            token, secret = services.api_token_create(
                team=team, name=name, role=role, created_by=None
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            f"Created API token {token.name!r} ({token.role}) for team {team.slug}. "
            "Copy it now: it is not stored and cannot be shown again."
        )
        self.stdout.write(secret)

    def _revoke(self, team: Team, name: str) -> None:
        token = selectors.api_tokens_of(team).filter(name=name, revoked_at__isnull=True).first()
        if token is None:
            raise CommandError(f"Team {team.slug} has no active API token named {name!r}.")
        services.api_token_revoke(token=token, actor=None)
        self.stdout.write(f"Revoked API token {name!r} ({token.prefix}…) of team {team.slug}.")

    def _list(self, team: Team) -> None:
        tokens = list(selectors.api_tokens_of(team))
        if not tokens:
            self.stdout.write(f"Team {team.slug} has no API tokens.")
            return
        row = "{:<30} {:<9} {:<14} {:<17} {:<17} {}"
        self.stdout.write(row.format("NAME", "ROLE", "PREFIX", "CREATED", "LAST USED", "STATUS"))
        for token in tokens:
            self.stdout.write(
                row.format(
                    token.name,
                    token.role,
                    f"{token.prefix}…",
                    f"{token.created_at:%Y-%m-%d %H:%M}",
                    f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
                    f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active",
                )
            )
