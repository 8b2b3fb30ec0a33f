"""The media server's voicemail messages (media/store.py defines the same table).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voicemail_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("cause", sa.String(16), nullable=True),
        sa.Column("heard", sa.Boolean(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_voicemail_messages"),
    )
    op.create_index("ix_voicemail_messages_username", "voicemail_messages", ["username"])


def downgrade() -> None:
    op.drop_index("ix_voicemail_messages_username", table_name="voicemail_messages")
    op.drop_table("voicemail_messages")
