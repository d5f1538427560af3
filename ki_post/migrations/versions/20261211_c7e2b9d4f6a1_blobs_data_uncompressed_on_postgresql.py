"""blobs: PostgreSQL keeps blob bytes out of line without compressing them again

DOCX, PDF and ZIP are compressed already; TOAST's attempt to compress them again only cost time
(two thirds of inserting a run's letters). Affects rows written from now on; SQLite has no such
setting.

Revision ID: c7e2b9d4f6a1
Revises: a4d7c2e91b38
Create Date: 2026-12-11 02:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c7e2b9d4f6a1'
down_revision = 'a4d7c2e91b38'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTENDED")
