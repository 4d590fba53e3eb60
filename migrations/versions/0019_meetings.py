"""meeting minutes, cadence and exemptions

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 19:32:56.974294
"""
from alembic import op
import sqlalchemy as sa
import models.base


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meeting_cadence',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('times', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('kind', name=op.f('pk_meeting_cadence'))
    )
    op.create_table('meeting_exemptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=True),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_meeting_exemptions_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_exemptions'))
    )
    with op.batch_alter_table('meeting_exemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_exemptions_org_unit_id'), ['org_unit_id'], unique=False)

    op.create_table('meeting_minutes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('host', sa.String(length=64), nullable=False),
    sa.Column('recorder', sa.String(length=64), nullable=False),
    sa.Column('observers', sa.Text(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('decisions', sa.Text(), nullable=False),
    sa.Column('attendance', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('submitted_at', models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_meeting_minutes_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_minutes')),
    sa.UniqueConstraint('event_id', name=op.f('uq_meeting_minutes_event_id'))
    )


def downgrade() -> None:
    op.drop_table('meeting_minutes')
    with op.batch_alter_table('meeting_exemptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_exemptions_org_unit_id'))

    op.drop_table('meeting_exemptions')
    op.drop_table('meeting_cadence')
