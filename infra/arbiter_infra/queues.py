"""The SQS queues: tasks (wrapper), fabrication requests (Fabricator), orchestration results (users), and DLQs."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

__all__ = ["Queues"]

_DLQ_RETENTION = Duration.days(14)


class Queues(Construct):
    """Every queue is SSE-encrypted and SSL-only; every work queue has a dead-letter queue; grants by role.

    ``events_dlq`` receives the events the bus could not deliver to a target and the arbiter invocations that failed
    after Lambda's retries: everything in it is an event the system did not handle.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        task_visibility: Duration,
        fabrication_visibility: Duration,
        max_receive_count: int,
    ) -> None:
        """Define the queues.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            task_visibility: the task queue's visibility timeout (at least six times the wrapper's timeout).
            fabrication_visibility: the fabrication queue's (at least six times the Fabricator's timeout).
            max_receive_count: receives before a message moves to its dead-letter queue.
        """
        super().__init__(scope, construct_id)
        self.task_dlq = self._queue("TaskDlq", retention=_DLQ_RETENTION)
        self.task = self._queue(
            "Task",
            visibility=task_visibility,
            dlq=sqs.DeadLetterQueue(queue=self.task_dlq, max_receive_count=max_receive_count),
        )
        self.fabrication_dlq = self._queue("FabricationDlq", retention=_DLQ_RETENTION)
        self.fabrication = self._queue(
            "Fabrication",
            visibility=fabrication_visibility,
            dlq=sqs.DeadLetterQueue(queue=self.fabrication_dlq, max_receive_count=max_receive_count),
        )
        self.results_dlq = self._queue("ResultsDlq", retention=_DLQ_RETENTION)
        self.results = self._queue(
            "Results",
            retention=Duration.days(7),
            dlq=sqs.DeadLetterQueue(queue=self.results_dlq, max_receive_count=max_receive_count),
        )
        self.events_dlq = self._queue("EventsDlq", retention=_DLQ_RETENTION)

    def _queue(
        self,
        name: str,
        *,
        visibility: Duration | None = None,
        retention: Duration | None = None,
        dlq: sqs.DeadLetterQueue | None = None,
    ) -> sqs.Queue:
        return sqs.Queue(
            self,
            name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=visibility,
            retention_period=retention,
            dead_letter_queue=dlq,
        )

    @property
    def dead_letter_queues(self) -> dict[str, sqs.Queue]:
        """Every dead-letter queue by a short name (for alarms)."""
        return {
            "Task": self.task_dlq,
            "Fabrication": self.fabrication_dlq,
            "Results": self.results_dlq,
            "Events": self.events_dlq,
        }

    def grant_dispatch(self, grantee: iam.IGrantable) -> None:
        """Send to the task and fabrication queues (``sqs:SendMessage`` also authorizes SendMessageBatch)."""
        _grant_send(grantee, self.task, self.fabrication)

    def grant_consume_tasks(self, grantee: iam.IGrantable) -> None:
        """What the task queue's event source mapping needs, and sending to its DLQ (a message for no task)."""
        _grant_consume(grantee, self.task)
        _grant_send(grantee, self.task_dlq)

    def grant_consume_fabrications(self, grantee: iam.IGrantable) -> None:
        """What the fabrication queue's event source mapping needs, and sending to its DLQ (a request for no task)."""
        _grant_consume(grantee, self.fabrication)
        _grant_send(grantee, self.fabrication_dlq)

    def grant_events_dlq_send(self, grantee: iam.IGrantable) -> None:
        """Send failed asynchronous invocations to the events dead-letter queue (Lambda uses the function's role)."""
        _grant_send(grantee, self.events_dlq)


def _grant_send(grantee: iam.IGrantable, *queues: sqs.Queue) -> None:
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["sqs:SendMessage"], resource_arns=[queue.queue_arn for queue in queues]
    )


def _grant_consume(grantee: iam.IGrantable, queue: sqs.Queue) -> None:
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=[
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueAttributes",
        ],
        resource_arns=[queue.queue_arn],
    )
