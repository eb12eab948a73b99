from onionskin.cli import main

main()
