"""posts get the number their author and the organisers know them by; blocked attempts get none

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 19:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

posts = sa.table("posts", sa.column("id", sa.Integer), sa.column("status", sa.String),
                 sa.column("number", sa.Integer))


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_posts_number'), ['number'])
    # Posts that reached anyone are numbered in the order they came; a blocked attempt takes no number.
    connection = op.get_bind()
    ids = connection.execute(sa.select(posts.c.id).where(posts.c.status != "blocked").order_by(posts.c.id)).scalars()
    for number, post_id in enumerate(list(ids), start=1):
        connection.execute(posts.update().where(posts.c.id == post_id).values(number=number))


def downgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_posts_number'), type_='unique')
        batch_op.drop_column('number')
