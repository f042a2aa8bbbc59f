#!/usr/bin/env bash
# Makes sure the services the tests use are up on loopback:
#   RabbitMQ  127.0.0.1:5672 (guest/guest, vhost %2f)
#   ZooKeeper 127.0.0.1:2181 (own test config under target/zookeeper)
# Starts what is missing and waits (bounded) until it is ready. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

port_open() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ---------------------------------------------------------------- RabbitMQ
if port_open 127.0.0.1 5672; then
    echo "services: RabbitMQ already answers on 127.0.0.1:5672"
else
    echo "services: starting RabbitMQ (rabbitmq-server -detached)"
    rabbitmq-server -detached
    # await_startup fails at once while the node is not yet registered with
    # epmd ("unable to connect"): retry it, bounded (~90 s in all).
    started=
    for _ in $(seq 1 30); do
        if rabbitmqctl await_startup --timeout 60 >/dev/null 2>&1; then
            started=yes
            break
        fi
        sleep 1
    done
    if [[ -z $started ]]; then
        echo "services: RabbitMQ did not start (see /var/log/rabbitmq/)" >&2
        exit 1
    fi
    for _ in $(seq 1 100); do # at most ~10 s more
        port_open 127.0.0.1 5672 && break
        sleep 0.1
    done
    if ! port_open 127.0.0.1 5672; then
        echo "services: RabbitMQ started but 127.0.0.1:5672 does not accept" >&2
        exit 1
    fi
    echo "services: RabbitMQ ready on 127.0.0.1:5672"
fi

# --------------------------------------------------------------- ZooKeeper
zk_ok() {
    [[ $(echo ruok | nc -q1 -w2 127.0.0.1 2181 2>/dev/null || true) == imok ]]
}

if zk_ok; then
    echo "services: ZooKeeper already answers imok on 127.0.0.1:2181"
else
    if port_open 127.0.0.1 2181; then
        echo "services: 127.0.0.1:2181 is in use but does not answer ruok with imok" \
            "(a ZooKeeper without ruok in 4lw.commands.whitelist?)" >&2
        exit 1
    fi
    ZK=$ROOT/target/zookeeper
    mkdir -p "$ZK/data"
    cat >"$ZK/zoo.cfg" <<CFG
tickTime=500
initLimit=10
syncLimit=5
dataDir=$ZK/data
clientPort=2181
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=ruok,srvr,stat,mntr
admin.enableServer=false
minSessionTimeout=1000
maxSessionTimeout=60000
CFG
    echo "services: starting ZooKeeper with $ZK/zoo.cfg"
    /usr/share/zookeeper/bin/zkServer.sh start "$ZK/zoo.cfg"
    for _ in $(seq 1 150); do # at most ~30 s
        zk_ok && break
        sleep 0.2
    done
    if ! zk_ok; then
        echo "services: ZooKeeper did not answer imok within 30 s (see /var/log/zookeeper)" >&2
        exit 1
    fi
    echo "services: ZooKeeper ready on 127.0.0.1:2181"
fi
