from cache.app import main

main(name="dbcache", port=8300, upstream_url="http://127.0.0.1:8400")
