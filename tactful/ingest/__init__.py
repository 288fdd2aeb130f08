"""Pure translators from other systems' payloads to tactful events and profile changes.

One module per source: `segment` (Segment's Tracking API: track, identify, page, screen,
alias, group, batch), `sendgrid` (the Event Webhook, and its ECDSA signature),
`twilio` (inbound SMS with STOP keywords, and the request signature). Each takes the
decoded payload and the time it arrived and returns dataclasses; none reads a clock,
a store or the network, so the HTTP layer, replay and tests share them.
A bad payload raises, or for batches reports, an `IngestError` naming the field.
"""

from __future__ import annotations

from tactful.addresses import email_or_none as normalize_email
from tactful.addresses import phone_or_none as normalize_phone
from tactful.ingest.errors import IngestError
from tactful.ingest.segment import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SEGMENT_EVENTS,
    ProfilePatch,
    SegmentBatch,
    SegmentMessage,
    check_size,
    event_kind,
    translate_batch,
    translate_message,
)
from tactful.ingest.sendgrid import (
    SendgridBatch,
    SendgridEvent,
    translate_sendgrid,
    verify_sendgrid_signature,
)
from tactful.ingest.twilio import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    SMS_HELP,
    InboundSms,
    compute_twilio_signature,
    translate_twilio_inbound,
    validate_twilio_signature,
)

__all__ = [
    "HELP_KEYWORDS",
    "MAX_BATCH_BYTES",
    "MAX_MESSAGE_BYTES",
    "OPT_IN_KEYWORDS",
    "OPT_OUT_KEYWORDS",
    "SEGMENT_EVENTS",
    "SMS_HELP",
    "InboundSms",
    "IngestError",
    "ProfilePatch",
    "SegmentBatch",
    "SegmentMessage",
    "SendgridBatch",
    "SendgridEvent",
    "check_size",
    "compute_twilio_signature",
    "event_kind",
    "normalize_email",
    "normalize_phone",
    "translate_batch",
    "translate_message",
    "translate_sendgrid",
    "translate_twilio_inbound",
    "validate_twilio_signature",
    "verify_sendgrid_signature",
]
