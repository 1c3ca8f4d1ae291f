"""Message buses: MQTT through a real broker (mosquitto) and an in-process hub for the embedded default."""

from .base import ALARM, STATUS, VOTE, Bus, acl_rules, allowed, cfp_topic, inbox, topic_matches

__all__ = ["ALARM", "STATUS", "VOTE", "Bus", "acl_rules", "allowed", "cfp_topic", "inbox", "topic_matches"]
