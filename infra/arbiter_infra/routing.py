"""EventBridge: the custom bus, its rules (ingress, completions, bus triggers, results) and the sweeper schedule.

Bus triggers are registered at run time (an agent's manifest), so no rule is made per trigger: one rule sends the
engine's one triggerable event (``arbiter.fabricator`` / ``agent.published``, from this account) to the arbiter
function, which matches it against the registered bus triggers itself; events from other sources reach the arbiter
through the ingress rules, and it matches them there too (a second rule for them would deliver them twice).

The engine's own sources (``arbiter``, ``arbiter.*``) are reserved: the bus's resource policy refuses ``PutEvents``
of such events from any principal but the stack's functions, and the completions rule takes only the wrapper's
source from this account. (The Arbiter also checks each completion's source, account and per-task token.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

__all__ = ["BUS_TRIGGERS_PATTERN", "COMPLETION_PATTERN", "RESERVED_SOURCES", "RESULTS_PATTERN", "EventRouting"]

#: Task completions, emitted by the wrapper (the Fabricator reports through the same code, with the same source).
#: The rule adds the stack's account: a completion put on the bus from another account is not delivered.
COMPLETION_PATTERN: dict[str, Any] = {
    "source": ["arbiter.wrapper"],
    "detail-type": ["task.completed"],
}
#: The engine's events a bus trigger may select (``blackboard.triggers.TRIGGERABLE_ENGINE_EVENTS``), from this account.
BUS_TRIGGERS_PATTERN: dict[str, Any] = {
    "source": ["arbiter.fabricator"],
    "detail-type": ["agent.published"],
}
#: ``events:source`` patterns (``StringLike``) of the engine's own events, which only its functions may put.
RESERVED_SOURCES = ("arbiter", "arbiter.*")
#: Orchestration results, emitted by the Arbiter.
RESULTS_PATTERN: dict[str, Any] = {
    "source": ["arbiter"],
    "detail-type": ["orchestration.completed", "orchestration.failed"],
}

# Work events (ingress, completions) are worth retrying for a while; a missed sweep is replaced a minute later.
_WORK_RETRIES = 10
_WORK_MAX_AGE = Duration.hours(2)
_SWEEP_RETRIES = 2
_SWEEP_MAX_AGE = Duration.minutes(2)


class EventRouting(Construct):
    """The bus and every rule; each target has a retry policy and the events dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bus_name: str,
        ingress_patterns: Sequence[dict[str, Any]],
        arbiter: lambda_.IFunction,
        results: sqs.IQueue,
        dead_letters: sqs.IQueue,
    ) -> None:
        """Define the bus, the rules and the schedule.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            bus_name: the custom bus's name.
            ingress_patterns: one rule per pattern routes matching events to the arbiter function.
            arbiter: the arbiter function (ingress, completions, bus triggers, sweeps).
            results: where orchestration results go for users to read.
            dead_letters: where undeliverable events go.
        """
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name, description="Arbiter: events in and out")
        work_target = targets.LambdaFunction(
            arbiter, dead_letter_queue=dead_letters, retry_attempts=_WORK_RETRIES, max_event_age=_WORK_MAX_AGE
        )
        self.ingress_rules = [
            self._ingress_rule(index, pattern, work_target) for index, pattern in enumerate(ingress_patterns)
        ]
        self.completions = events.Rule(
            self,
            "Completions",
            event_bus=self.bus,
            description="Task completions from the wrapper and the Fabricator, from this account",
            event_pattern=events.EventPattern(
                source=COMPLETION_PATTERN["source"],
                detail_type=COMPLETION_PATTERN["detail-type"],
                account=[Stack.of(self).account],
            ),
            targets=[work_target],
        )
        self.bus_triggers = events.Rule(
            self,
            "BusTriggers",
            event_bus=self.bus,
            description="agent.published from the Fabricator, from this account: the arbiter runs the bus triggers",
            event_pattern=events.EventPattern(
                source=BUS_TRIGGERS_PATTERN["source"],
                detail_type=BUS_TRIGGERS_PATTERN["detail-type"],
                account=[Stack.of(self).account],
            ),
            targets=[work_target],
        )
        self.results = events.Rule(
            self,
            "Results",
            event_bus=self.bus,
            description="Orchestration results, to the results queue",
            event_pattern=_pattern(RESULTS_PATTERN),
            targets=[
                targets.SqsQueue(
                    results, dead_letter_queue=dead_letters, retry_attempts=_WORK_RETRIES, max_event_age=_WORK_MAX_AGE
                )
            ],
        )
        # Schedules live on the default bus; the event is the standard one (source aws.events, Scheduled Event).
        self.sweeper = events.Rule(
            self,
            "Sweeper",
            description="Every minute: the Arbiter's sweep (stranded tasks, deadlines, due retries)",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[
                targets.LambdaFunction(
                    arbiter, dead_letter_queue=dead_letters, retry_attempts=_SWEEP_RETRIES, max_event_age=_SWEEP_MAX_AGE
                )
            ],
        )

    def _ingress_rule(self, index: int, pattern: dict[str, Any], target: events.IRuleTarget) -> events.Rule:
        """A rule for one user pattern, kept verbatim (any field, content filters, ``$or``)."""
        rule = events.Rule(
            self,
            f"Ingress{index}",
            event_bus=self.bus,
            description=f"Ingress pattern {index}: events that start an orchestration",
            # The L2 rule wants a pattern it can model; the user's pattern replaces it verbatim just below.
            event_pattern=events.EventPattern(source=events.Match.prefix("")),
            targets=[target],
        )
        cast(events.CfnRule, rule.node.default_child).event_pattern = pattern
        return rule

    def grant_put_events(self, grantee: iam.IGrantable) -> None:
        """Publish to the bus (``events:PutEvents`` on this bus only)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["events:PutEvents"], resource_arns=[self.bus.event_bus_arn]
        )

    def reserve_sources(self, publishers: Sequence[iam.IRole]) -> None:
        """Refuse ``PutEvents`` with a reserved source (:data:`RESERVED_SOURCES`) from all but ``publishers``.

        An explicit deny in the bus's resource policy: it holds whatever an identity policy elsewhere allows, so
        no other role, user or account can put an event that looks like the engine's own.
        """
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheEnginePutsReservedSources",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={
                    "StringLike": {"events:source": list(RESERVED_SOURCES)},
                    "ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in publishers]},
                },
            )
        )


def _pattern(raw: dict[str, Any]) -> events.EventPattern:
    return events.EventPattern(source=raw["source"], detail_type=raw["detail-type"])
