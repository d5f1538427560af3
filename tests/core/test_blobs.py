"""The blob store under concurrency (both backends)."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from ki_post.blobs import Blob, load_blob, store_blob
from ki_post.extensions import db


def test_same_new_bytes_stored_by_two_sessions_at_once(app):
    data = b"Rundschreiben 1/2017 " * 500
    key = store_blob(data)  # first session: inserted, not yet committed
    errors: list[BaseException] = []

    def second_session() -> None:
        try:
            with app.app_context():
                assert store_blob(data) == key  # waits for the first session's row, then does nothing
                db.session.commit()
        except BaseException as error:  # noqa: BLE001 - reported to the test thread
            errors.append(error)

    other = threading.Thread(target=second_session)
    other.start()
    other.join(0.5)  # the second session is now waiting for the first one's lock
    db.session.commit()
    other.join(30)
    assert not other.is_alive()
    assert errors == []
    assert db.session.scalar(select(func.count()).select_from(Blob)) == 1
    assert load_blob(key) == data
