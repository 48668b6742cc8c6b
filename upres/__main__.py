from upres.cli import app

app()
