from localdev.stack import main

main()
