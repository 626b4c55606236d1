from cache.app import main

main()
