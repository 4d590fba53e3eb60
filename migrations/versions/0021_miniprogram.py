"""mini-program users linked to roster members; followers' unionid

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 09:20:00
"""
from alembic import op
import sqlalchemy as sa
import models.base


revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mini_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('unionid', sa.String(length=64), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('bound_at', models.base.UTCDateTime(), nullable=True),
    sa.Column('session_key', sa.String(length=64), nullable=False),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(), nullable=False),
    sa.Column('last_login_at', models.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_mini_users_member_id_members')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mini_users')),
    sa.UniqueConstraint('member_id', name=op.f('uq_mini_users_member_id')),
    sa.UniqueConstraint('openid', name=op.f('uq_mini_users_openid'))
    )
    op.create_index(op.f('ix_mini_users_unionid'), 'mini_users', ['unionid'], unique=False)
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unionid', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_followers_unionid'), ['unionid'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_followers_unionid'))
        batch_op.drop_column('unionid')
    op.drop_index(op.f('ix_mini_users_unionid'), table_name='mini_users')
    op.drop_table('mini_users')
