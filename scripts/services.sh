#!/usr/bin/env bash
# Makes sure the services the tests use are up on loopback:
#   RabbitMQ  127.0.0.1:5672 (guest/guest, vhost %2f; RabbitMQ's own
#             RABBITMQ_NODE_PORT moves it, and where this script looks)
#   ZooKeeper 127.0.0.1:2181 (own test config under target/zookeeper)
# Starts what is missing and waits (bounded) until it is ready. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The broker tests (tests/amqp_*.rs, sensor_publish, hostile_input) need
# RabbitMQ and the cluster tests (tests/cluster.rs) ZooKeeper;
# scripts/test.sh runs them all, so a service that does not start is an
# error (exit 1). DNSMONITOR_SERVICES_STRICT=0 only warns (for a developer
# who then runs the tests with DNSMONITOR_SKIP_SERVICES=1).
STRICT=${DNSMONITOR_SERVICES_STRICT:-1}
problem() { # the tests need it
    echo "services: $*" >&2
    if [[ $STRICT == 1 ]]; then
        exit 1
    fi
    echo "services: WARNING: continuing without it (DNSMONITOR_SERVICES_STRICT=0)" >&2
}
zk_problem() { # ZooKeeper: tests/cluster.rs needs it
    problem "$@"
}

port_open() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ---------------------------------------------------------------- RabbitMQ
AMQP_PORT=${RABBITMQ_NODE_PORT:-5672}
if port_open 127.0.0.1 "$AMQP_PORT"; then
    echo "services: RabbitMQ already answers on 127.0.0.1:$AMQP_PORT"
else
    echo "services: starting RabbitMQ (rabbitmq-server -detached)"
    rabbitmq-server -detached || problem "rabbitmq-server -detached failed"
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
        problem "RabbitMQ did not start (see /var/log/rabbitmq/)"
    fi
    for _ in $(seq 1 100); do # at most ~10 s more
        port_open 127.0.0.1 "$AMQP_PORT" && break
        sleep 0.1
    done
    if port_open 127.0.0.1 "$AMQP_PORT"; then
        echo "services: RabbitMQ ready on 127.0.0.1:$AMQP_PORT"
    else
        problem "RabbitMQ started but 127.0.0.1:$AMQP_PORT does not accept"
    fi
fi

# --------------------------------------------------------------- ZooKeeper
zk_ok() {
    [[ $(echo ruok | nc -q1 -w2 127.0.0.1 2181 2>/dev/null || true) == imok ]]
}

if zk_ok; then
    echo "services: ZooKeeper already answers imok on 127.0.0.1:2181"
else
    if port_open 127.0.0.1 2181; then
        zk_problem "127.0.0.1:2181 is in use but does not answer ruok with imok" \
            "(a ZooKeeper without ruok in 4lw.commands.whitelist?)"
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
    /usr/share/zookeeper/bin/zkServer.sh start "$ZK/zoo.cfg" || zk_problem "zkServer.sh start failed"
    for _ in $(seq 1 150); do # at most ~30 s
        zk_ok && break
        sleep 0.2
    done
    if zk_ok; then
        echo "services: ZooKeeper ready on 127.0.0.1:2181"
    else
        zk_problem "ZooKeeper did not answer imok within 30 s (see /var/log/zookeeper)"
    fi
fi
