"""create the event table

Revision ID: ec0001
Revises:
Create Date: 2025-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = "ec0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("event_id", sa.Integer, sa.Identity(always=False), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("category", sa.String(50), nullable=False, server_default="concert"),
        sa.Column("venue", sa.String(200), nullable=False),
        sa.Column("city", sa.String(100), nullable=False, server_default=""),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False, server_default="USD"),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("tickets_available", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # The inventory invariant lives in the database too: no code path can oversell.
        sa.CheckConstraint("tickets_available >= 0", name="event_tickets_available_nonnegative"),
        sa.CheckConstraint("tickets_available <= capacity", name="event_tickets_available_le_capacity"),
        sa.CheckConstraint("price >= 0", name="event_price_nonnegative"),
    )
    op.create_index("ix_event_venue", "event", ["venue"])
    op.create_index("ix_event_date", "event", ["date"])


def downgrade() -> None:
    op.drop_table("event")
