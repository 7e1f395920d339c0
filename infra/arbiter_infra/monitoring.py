"""CloudWatch alarms: messages in any dead-letter queue, function errors and throttles, a stalled task queue."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

__all__ = ["Monitoring"]

_PERIOD = Duration.minutes(5)
#: The task queue's oldest message older than this means the wrapper is not keeping up (or not running).
_TASK_AGE_SECONDS = 900


class Monitoring(Construct):
    """One alarm per dead-letter queue (any message), per function (errors, throttles), and on task queue age."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        functions: Mapping[str, lambda_.IFunction],
        task_queue: sqs.IQueue,
        alarm_topic_arn: str | None,
    ) -> None:
        """Define the alarms.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            dead_letter_queues: by a short name used in the alarm's id.
            functions: by name.
            task_queue: the queue the wrapper consumes.
            alarm_topic_arn: an existing SNS topic every alarm notifies (none: alarms only change state).
        """
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        for name, queue in dead_letter_queues.items():
            self._alarm(
                f"{name}DlqNotEmpty",
                queue.metric_approximate_number_of_messages_visible(period=_PERIOD, statistic="Maximum"),
                1,
                f"Messages in the {name.lower()} dead-letter queue: inspect them, fix the cause, redrive them",
            )
        for name, function in functions.items():
            self._alarm(
                f"{name.capitalize()}Errors",
                function.metric_errors(period=_PERIOD, statistic="Sum"),
                1,
                f"The {name} function raised errors: see its log group",
            )
            self._alarm(
                f"{name.capitalize()}Throttles",
                function.metric_throttles(period=_PERIOD, statistic="Sum"),
                1,
                f"The {name} function was throttled: raise its reserved concurrency or the account's quota",
            )
        self._alarm(
            "TaskQueueStalled",
            task_queue.metric_approximate_age_of_oldest_message(period=_PERIOD, statistic="Maximum"),
            _TASK_AGE_SECONDS,
            "Tasks have waited more than 15 minutes in the task queue: the wrapper is not keeping up",
        )
        if alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
            for alarm in self.alarms:
                alarm.add_alarm_action(actions.SnsAction(topic))

    def _alarm(self, name: str, metric: cloudwatch.Metric, threshold: float, description: str) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
        )
