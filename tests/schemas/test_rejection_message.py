"""The rejections topic's message: the optional body of issue 15, compatible both ways."""

from __future__ import annotations

from schemas.messages import RejectionMessage


def test_a_rejection_may_carry_a_body_and_old_ones_without_it_still_decode() -> None:
    old = (
        b'{"v":1,"kind":"rejection","source":"web","endpoint":"batch","index":0,'
        b'"message_id":null,"errors":[{"field":"event","reason":"required"}],'
        b'"received_at":"2026-01-01T00:00:00Z"}'
    )
    decoded = RejectionMessage.model_validate_json(old)
    assert (decoded.body, decoded.body_truncated) == (None, False)
    with_body = decoded.model_copy(update={"body": '{"type":"track"}', "body_truncated": True})
    again = RejectionMessage.model_validate_json(with_body.model_dump_json())
    assert (again.body, again.body_truncated) == ('{"type":"track"}', True)
