from upres.cli import main

main()
