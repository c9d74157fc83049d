"""Input subscriptions whose reliability follows the publishers (``qos_input_reliability: auto``).

A best-effort subscription matches every publisher, but large frames sent to it are lost
whenever one of their fragments is (Fast DDS sends samples above its 512 KB shared-memory
segment as fragments; on the development machine 640x480 frames from a reliable publisher to
a best-effort subscription mostly never arrived). A reliable subscription gets every frame of a
reliable publisher and cannot match a best-effort one. So ``auto`` subscribes reliably while
every publisher on the topic offers reliable delivery, and best effort as soon as one does not;
it re-checks the graph periodically and re-creates the subscription when the answer changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

_POLICIES = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}


def reliability_for(publishers: list[Any], current: str) -> str:
    """``reliable`` while every publisher offers it, ``best_effort`` as soon as one does not;
    ``current`` when there are no publishers yet."""
    if not publishers:
        return current
    best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                      for p in publishers)
    return "best_effort" if best_effort else "reliable"


class InputSubscription:
    """One input topic's subscription with a fixed or automatic reliability.

    Args:
        node: the owning node.
        msg_type, topic, callback: as for ``create_subscription``.
        mode: ``auto``, ``reliable`` or ``best_effort``.
        depth: history depth.
        on_incompatible: called with the event of an incompatible publisher.
        log: called with a line when ``auto`` changes the reliability.
    """

    def __init__(self, node: Any, msg_type: type, topic: str, callback: Callable[[Any], None],
                 mode: str, depth: int, on_incompatible: Callable[[Any], None],
                 log: Callable[[str], Any]) -> None:
        self.node, self.msg_type, self.topic, self.callback = node, msg_type, topic, callback
        self.mode, self.depth = mode, depth
        self._on_incompatible, self._log = on_incompatible, log
        self.reliability = "best_effort" if mode == "auto" else mode
        self.sub: Any = None
        self._create()
        self.refresh()

    def _create(self) -> None:
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
        qos = QoSProfile(depth=self.depth, history=HistoryPolicy.KEEP_LAST,
                         reliability=_POLICIES[self.reliability])
        events = SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible)
        self.sub = self.node.create_subscription(self.msg_type, self.topic, self.callback, qos,
                                                 event_callbacks=events)

    def refresh(self) -> bool:
        """In ``auto`` mode, follow the publishers now on the topic; True if re-created."""
        if self.mode != "auto" or self.sub is None:
            return False
        publishers = self.node.get_publishers_info_by_topic(self.sub.topic_name)
        wanted = reliability_for(publishers, self.reliability)
        if wanted == self.reliability:
            return False
        self._log(f"input {self.sub.topic_name}: {wanted.replace('_', ' ')} "
                  f"({len(publishers)} publisher(s); qos_input_reliability auto)")
        self.reliability = wanted
        self._create()
        return True

    def destroy(self) -> None:
        if self.sub is not None:
            self.node.destroy_subscription(self.sub)
            self.sub = None
