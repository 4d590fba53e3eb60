"""quiz attempts keep their kind however they end (how they ended, when last active); followers
record when a window message was last spent

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 15:10:00
"""
from alembic import op
import sqlalchemy as sa
import models.base


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_at', models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('ended', sa.String(length=16), server_default='', nullable=False))
    # Attempts left half-way used to be relabelled 'abandoned' and dropped from counts and results:
    # a contest's are its attempts again (they count against the limit and in the results); for the
    # others the kind is lost, they stay as they are.
    op.execute("UPDATE quiz_attempts SET ended = 'expired' WHERE kind = 'abandoned'")
    op.execute("UPDATE quiz_attempts SET kind = 'contest' WHERE kind = 'abandoned' AND contest_id IS NOT NULL")
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cs_window_spent_at', models.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.drop_column('cs_window_spent_at')
    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.drop_column('ended')
        batch_op.drop_column('active_at')
