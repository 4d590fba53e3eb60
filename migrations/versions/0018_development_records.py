"""development records: steps with dates, local rules

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 18:01:13.864825
"""
from alembic import op
import sqlalchemy as sa
import models.base


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dev_local_rules',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('changed_by', sa.String(length=64), nullable=False),
    sa.Column('changed_at', models.base.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_dev_local_rules'))
    )
    op.create_table('dev_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('closed_reason', sa.String(length=200), nullable=False),
    sa.Column('leaves_on', sa.Date(), nullable=True),
    sa.Column('stage_before', sa.String(length=16), nullable=False),
    sa.Column('next_step', sa.String(length=32), nullable=False),
    sa.Column('next_earliest', sa.Date(), nullable=True),
    sa.Column('next_latest', sa.Date(), nullable=True),
    sa.Column('provisional', sa.Boolean(), nullable=False),
    sa.Column('probation_end', sa.Date(), nullable=True),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_dev_records_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dev_records')),
    sa.UniqueConstraint('member_id', name=op.f('uq_dev_records_member_id'))
    )
    with op.batch_alter_table('dev_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dev_records_next_latest'), ['next_latest'], unique=False)
        batch_op.create_index(batch_op.f('ix_dev_records_next_step'), ['next_step'], unique=False)
        batch_op.create_index(batch_op.f('ix_dev_records_probation_end'), ['probation_end'], unique=False)

    op.create_table('dev_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('done_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('document', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('late_days', sa.Integer(), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', models.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['dev_records.id'], name=op.f('fk_dev_steps_record_id_dev_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dev_steps'))
    )
    with op.batch_alter_table('dev_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dev_steps_record_id'), ['record_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('dev_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dev_steps_record_id'))

    op.drop_table('dev_steps')
    with op.batch_alter_table('dev_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dev_records_probation_end'))
        batch_op.drop_index(batch_op.f('ix_dev_records_next_step'))
        batch_op.drop_index(batch_op.f('ix_dev_records_next_latest'))

    op.drop_table('dev_records')
    op.drop_table('dev_local_rules')
