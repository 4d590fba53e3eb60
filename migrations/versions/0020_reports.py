"""reports up the tree: periods with deadlines, frozen versions; files kept with meeting minutes; daily sums
of the biggest tables and the indexes the report reads them by

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 21:25:46.051665
"""
from alembic import op
import sqlalchemy as sa
import models.base


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('daily_figures',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=48), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'org_unit_id', 'key', name=op.f('pk_daily_figures'))
    )
    op.create_table('daily_figures_settled',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('settled_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_daily_figures_settled'))
    )
    with op.batch_alter_table('study_readings', schema=None) as batch_op:
        batch_op.create_index('ix_study_readings_member_opened', ['member_id', 'opened_at'], unique=False)
        batch_op.create_index('ix_study_readings_opened_at', ['opened_at'], unique=False)
    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_quiz_attempts_day', ['day'], unique=False)
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_member_campaign', ['member_id', 'campaign_id'], unique=False)
    op.create_table('minutes_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('stored_name', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_minutes_attachments_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_minutes_attachments'))
    )
    with op.batch_alter_table('minutes_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_minutes_attachments_event_id'), ['event_id'], unique=False)

    op.create_table('report_periods',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=32), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('first', sa.Date(), nullable=False),
    sa.Column('last', sa.Date(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_periods')),
    sa.UniqueConstraint('kind', 'value', name=op.f('uq_report_periods_kind'))
    )
    op.create_table('reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_unit_id', sa.Integer(), nullable=False),
    sa.Column('period_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('snapshot', sa.Text(), nullable=False),
    sa.Column('digest', sa.String(length=16), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('submitted_by', sa.String(length=64), nullable=False),
    sa.Column('submitted_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('reviews', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_reports_org_unit_id_org_units'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['period_id'], ['report_periods.id'], name=op.f('fk_reports_period_id_report_periods'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports')),
    sa.UniqueConstraint('org_unit_id', 'period_id', 'version', name=op.f('uq_reports_org_unit_id'))
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reports_org_unit_id'), ['org_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reports_period_id'), ['period_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_member_campaign')
    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_quiz_attempts_day')
    with op.batch_alter_table('study_readings', schema=None) as batch_op:
        batch_op.drop_index('ix_study_readings_opened_at')
        batch_op.drop_index('ix_study_readings_member_opened')
    op.drop_table('daily_figures_settled')
    op.drop_table('daily_figures')
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reports_period_id'))
        batch_op.drop_index(batch_op.f('ix_reports_org_unit_id'))

    op.drop_table('reports')
    op.drop_table('report_periods')
    with op.batch_alter_table('minutes_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_minutes_attachments_event_id'))

    op.drop_table('minutes_attachments')
