"""booking and booking_outbox tables (owned by booking-service; ``event`` belongs to event-catalog)

Revision ID: bk0001
Revises:
Create Date: 2025-11-26
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "bk0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booking",
        sa.Column("booking_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("event.event_id", ondelete="RESTRICT"), nullable=False),
        sa.Column("ticket_count", sa.SmallInteger, nullable=False),
        sa.Column("unit_price", sa.Numeric(10, 2), nullable=False),
        sa.Column("total_price", sa.Numeric(12, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="confirmed"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ticket_count BETWEEN 1 AND 10", name="booking_ticket_count_range"),
    )
    op.create_index("ix_booking_user_created", "booking", ["user_id", sa.text("created_at DESC")])
    op.create_index("ix_booking_event", "booking", ["event_id"])
    op.create_table(
        "booking_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("booking_id", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("message_key", sa.String(255), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    # The relay's queue: only unpublished rows, in id order.
    op.create_index("ix_booking_outbox_pending", "booking_outbox", ["id"],
                    postgresql_where=sa.text("published_at IS NULL"))
    op.create_index("ix_booking_outbox_published_at", "booking_outbox", ["published_at"],
                    postgresql_where=sa.text("published_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_table("booking_outbox")
    op.drop_table("booking")
