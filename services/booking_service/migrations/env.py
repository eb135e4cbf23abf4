from ticketing_common.alembic_env import run

run()
