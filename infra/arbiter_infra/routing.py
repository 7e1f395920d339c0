"""EventBridge: the custom bus, its rules (ingress, completions, orchestration results) and the sweeper schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

__all__ = ["COMPLETION_PATTERN", "RESULTS_PATTERN", "EventRouting"]

#: Task completions, emitted by the wrapper and by the Fabricator.
COMPLETION_PATTERN: dict[str, Any] = {
    "source": ["arbiter.wrapper", "arbiter.fabricator"],
    "detail-type": ["task.completed"],
}
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
            arbiter: the arbiter function (ingress, completions, sweeps).
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
            description="Task completions from the wrapper and the Fabricator",
            event_pattern=_pattern(COMPLETION_PATTERN),
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


def _pattern(raw: dict[str, Any]) -> events.EventPattern:
    return events.EventPattern(source=raw["source"], detail_type=raw["detail-type"])
