"""/healthz and the database error page say what is wrong: unreachable, read-only, or a full disk.

Real conditions, no mocks: a read-only bind mount of the instance folder (or of the SQLite file),
a tiny tmpfs filled up, a PostgreSQL session that is read-only. Mounting needs root; without it
those tests skip with the reason.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from flask import g

from ki_post import create_app, prepare_instance
from ki_post.extensions import db
from tests.helpers import PASSWORD, Client, build_config
from tests.mounts import fill, read_only_view, small_disk


def sqlite_app(tmp_path: Path, folder: Path, **extra):
    extra.setdefault("OUTBOX_DIR", str(tmp_path / "postausgang"))
    config = build_config(tmp_path, "sqlite", DATABASE_URL=f"sqlite:///{folder}/ki-post.sqlite3", **extra)
    app = prepare_instance(create_app(config, instance_path=str(folder)))
    app.test_client_class = Client
    return app


def prepare_database(app) -> None:
    from ki_post.auth.services import create_user
    from ki_post.models import metadata

    with app.app_context():
        metadata.create_all(db.engine)
        create_user("admin@ministerium.example", "Admin", "admin", PASSWORD)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def login_attempt(app):
    g.pop("csrf_token", None)  # requests share the test's app context, where Flask-WTF keeps its token
    client = app.test_client()
    token = client.csrf_token("/anmelden")
    return client.post("/anmelden", data={"csrf_token": token, "email": "admin@ministerium.example", "password": PASSWORD})


@pytest.mark.parametrize("what", ["ordner", "datei"])
def test_read_only_sqlite_is_reported_not_ok(tmp_path, caplog, what):
    """Before: /healthz 200 while every login failed with "Datenbank nicht erreichbar"."""
    source = tmp_path / "rw"
    source.mkdir()
    prepare_database(sqlite_app(tmp_path, source))
    # A process still holding the database (as the running app did when its folder turned read-only)
    # keeps the WAL files, so reading still works; only writing fails.
    keeper = sqlite3.connect(source / "ki-post.sqlite3")
    keeper.execute("SELECT count(*) FROM users").fetchall()
    try:
        if what == "ordner":
            view = tmp_path / "ro"
            context = read_only_view(source, view)
        else:
            keeper.close()
            view = tmp_path / "instanz"
            view.mkdir()
            context = read_only_view(source / "ki-post.sqlite3", view / "ki-post.sqlite3")
        with context:
            app = sqlite_app(tmp_path, view)
            with app.app_context():
                health = app.test_client().get("/healthz")
                assert health.status_code == 503, health.json
                assert health.json["database"] == "schreibgeschützt"
                assert "Schreibrechte" in health.json["meldung"]
                with caplog.at_level(logging.ERROR):
                    page = login_attempt(app)
                body = page.get_data(as_text=True)
                assert page.status_code == 503
                assert "Die Datenbank ist schreibgeschützt" in body and "nicht erreichbar" not in body
                assert any("schreibgeschützt" in record.getMessage() for record in caplog.records)
                db.session.remove()
                db.engine.dispose()
    finally:
        keeper.close()


def test_full_disk_is_called_a_full_disk(tmp_path, caplog):
    """Before: the error page said "Datenbank nicht erreichbar" and /healthz answered 200."""
    with small_disk(tmp_path / "klein") as disk:
        app = sqlite_app(tmp_path, disk, HEALTHZ_MIN_FREE_MB=1)
        prepare_database(app)
        with app.app_context():
            assert app.test_client().get("/healthz").status_code == 200  # room left: all well
            fill(disk)
            health = app.test_client().get("/healthz")
            assert health.status_code == 503 and health.json["database"] == "Speicherplatz voll", health.json
            assert "Speicherplatz freigeben" in health.json["meldung"]
            with caplog.at_level(logging.ERROR):
                page = login_attempt(app)
            body = page.get_data(as_text=True)
            assert page.status_code == 503, body[:500]
            assert "Der Speicherplatz der Datenbank ist voll" in body and "nicht erreichbar" not in body
            assert any("Speicherplatz voll" in record.getMessage() for record in caplog.records)
            (disk / "fuellung.bin").unlink()  # room again: all well again
            assert app.test_client().get("/healthz").status_code == 200
            assert login_attempt(app).status_code == 302
            db.session.remove()
            db.engine.dispose()


def test_read_only_outbox_folder_is_reported_when_mail_is_written_as_files(tmp_path):
    outbox = tmp_path / "postausgang"
    outbox.mkdir()
    with read_only_view(outbox, tmp_path / "postausgang-ro") as view:
        app = sqlite_app(tmp_path, tmp_path / "instance", OUTBOX_DIR=str(view))
        prepare_database(app)
        with app.app_context():
            health = app.test_client().get("/healthz")
            assert health.status_code == 503
            assert health.json["postausgang"] == "schreibgeschützt" and health.json["database"] == "ok"
            app.config["MAIL_SERVER"] = "smtp.example"  # with SMTP the folder is not used
            assert app.test_client().get("/healthz").status_code == 200
            db.engine.dispose()


def test_read_only_postgresql_is_reported(tmp_path, backend, caplog):
    """A standby or ``default_transaction_read_only``: before, every login gave a 500 "Interner Fehler"."""
    if backend != "postgresql":
        pytest.skip("PostgreSQL: schreibgeschützte Sitzung")
    from tests.helpers import make_app

    writable = make_app(tmp_path, "postgresql")
    with writable.app_context():
        from ki_post.auth.services import create_user

        create_user("admin@ministerium.example", "Admin", "admin", PASSWORD)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    config = build_config(tmp_path, "postgresql", SQLALCHEMY_ENGINE_OPTIONS={
        "connect_args": {"options": "-c default_transaction_read_only=on"}})
    app = prepare_instance(create_app(config, instance_path=str(tmp_path / "instance")))
    app.test_client_class = Client
    with app.app_context():
        health = app.test_client().get("/healthz")
        assert health.status_code == 503 and health.json["database"] == "schreibgeschützt"
        with caplog.at_level(logging.ERROR):
            page = login_attempt(app)
        assert page.status_code == 503 and "Die Datenbank ist schreibgeschützt" in page.get_data(as_text=True)
        db.session.remove()
        db.engine.dispose()


def test_full_disk_on_postgresql(tmp_path, caplog):
    """A cluster of the test's own on a small tmpfs that fills up: the error page and the log say
    "Speicherplatz voll" (SQLSTATE 53100), and /healthz repeats what the refused write said."""
    from tests.pg_cluster import PostgresCluster

    missing = PostgresCluster.available()
    if missing:
        pytest.skip(f"kein eigener PostgreSQL-Cluster möglich: {missing}")
    cluster = PostgresCluster()
    cluster.data = cluster.base / "platte" / "daten"
    try:
        with small_disk(cluster.base / "platte", "96m") as disk, cluster:
            config = build_config(tmp_path, "postgresql", DATABASE_URL=cluster.url)
            app = prepare_instance(create_app(config, instance_path=str(tmp_path / "instance")))
            app.test_client_class = Client
            prepare_database(app)
            with app.app_context():
                assert app.test_client().get("/healthz").status_code == 200
                g.pop("csrf_token", None)
                staff = app.test_client()
                staff.login("admin@ministerium.example")
                # New pages are what a full disk refuses: an upload of a few MB (stored until imported).
                upload = ("E-Mail;Notizen\r\n" + "".join(
                    f"person{n}@kreis.example;{base64.b64encode(os.urandom(3000)).decode()}\r\n" for n in range(1000))).encode()

                def import_upload():
                    return staff.submit("/verteiler/import", {"file": (io.BytesIO(upload), "verteiler.csv")},
                                        content_type="multipart/form-data")

                fill(disk)
                with caplog.at_level(logging.ERROR):
                    page = import_upload()
                body = page.get_data(as_text=True)
                assert page.status_code == 503, body[:500]
                assert "Der Speicherplatz der Datenbank ist voll" in body and "nicht erreichbar" not in body
                assert any("Speicherplatz voll" in record.getMessage() for record in caplog.records)
                health = app.test_client().get("/healthz")
                assert health.status_code == 503 and health.json["database"] == "Speicherplatz voll", health.json
                assert "beim Speichern festgestellt" in health.json["meldung"]
                (disk / "fuellung.bin").unlink()
                assert import_upload().status_code == 302
                db.session.remove()
                db.engine.dispose()
    finally:
        import shutil

        shutil.rmtree(cluster.base, ignore_errors=True)
