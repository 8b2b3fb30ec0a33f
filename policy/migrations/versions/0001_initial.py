"""The directory, registrations and CDRs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEVEL_CHECK = "level IN ('company', 'department', 'user')"


def upgrade() -> None:
    meta = op.create_table(
        "meta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("directory_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meta"),
    )
    op.bulk_insert(meta, [{"id": 1, "directory_version": 0}])
    op.create_table(
        "company",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("alt_number", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_company"),
    )
    op.create_table(
        "departments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("alt_number", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_departments"),
        sa.UniqueConstraint("name", name="uq_departments_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("extension", sa.String(16), nullable=False),
        sa.Column("fixed", sa.String(32), nullable=True),
        sa.Column("mobile", sa.String(32), nullable=True),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("alt_number", sa.String(32), nullable=True),
        sa.Column("ha1_md5", sa.String(32), nullable=False),
        sa.Column("ha1_sha256", sa.String(64), nullable=False),
        sa.Column("web_password_hash", sa.String(255), nullable=True),
        sa.Column("voicemail_pin_hash", sa.String(255), nullable=True),
        sa.Column("play_activity_message", sa.Boolean(), nullable=False),
        sa.Column("caller_id_role", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("activity_kind", sa.String(16), nullable=False),
        sa.Column("activity_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name="fk_users_department_id_departments",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("extension", name="uq_users_extension"),
        sa.UniqueConstraint("fixed", name="uq_users_fixed"),
        sa.UniqueConstraint("mobile", name="uq_users_mobile"),
    )
    op.create_table(
        "user_groups",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_user_groups_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "group_id", name="pk_user_groups"),
    )
    op.create_table(
        "working_hours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name="ck_working_hours_weekday"),
        sa.CheckConstraint(_LEVEL_CHECK, name="ck_working_hours_level"),
        sa.PrimaryKeyConstraint("id", name="pk_working_hours"),
    )
    op.create_index("ix_working_hours_level_owner", "working_hours", ["level", "owner"])
    op.create_table(
        "closed_dates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.CheckConstraint(_LEVEL_CHECK, name="ck_closed_dates_level"),
        sa.PrimaryKeyConstraint("id", name="pk_closed_dates"),
        sa.UniqueConstraint("level", "owner", "day", name="uq_closed_dates_level_owner_day"),
    )
    op.create_table(
        "registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("aor", sa.String(255), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("cseq", sa.Integer(), nullable=False),
        sa.Column("q", sa.Float(), nullable=False),
        sa.Column("instance_id", sa.String(255), nullable=True),
        sa.Column("reg_id", sa.Integer(), nullable=True),
        sa.Column("source_host", sa.String(64), nullable=False),
        sa.Column("source_port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registrations"),
    )
    op.create_index("ix_registrations_aor", "registrations", ["aor"])
    op.create_table(
        "cdrs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("callee", sa.String(255), nullable=False),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("cause", sa.String(64), nullable=True),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_cdrs"),
    )
    op.create_index("ix_cdrs_call_id", "cdrs", ["call_id"])
    op.create_index("ix_cdrs_started_at", "cdrs", ["started_at"])
    op.create_index("ix_cdrs_username", "cdrs", ["username"])


def downgrade() -> None:
    for index, table in (
        ("ix_cdrs_username", "cdrs"),
        ("ix_cdrs_started_at", "cdrs"),
        ("ix_cdrs_call_id", "cdrs"),
        ("ix_registrations_aor", "registrations"),
        ("ix_working_hours_level_owner", "working_hours"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "cdrs",
        "registrations",
        "closed_dates",
        "working_hours",
        "user_groups",
        "users",
        "departments",
        "company",
        "meta",
    ):
        op.drop_table(table)
