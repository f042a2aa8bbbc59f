#!/usr/bin/env bash
# Makes sure the services the tests use are up on loopback:
#   RabbitMQ  127.0.0.1:5672 (guest/guest, vhost %2f)
#   ZooKeeper 127.0.0.1:2181 (own test config under target/zookeeper)
# Starts what is missing and waits (bounded) until it is ready. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# No test uses RabbitMQ or ZooKeeper yet (the RabbitMQ and cluster issues
# will add them): until then a service that fails to start is a loud
# warning, not a failed test run. DNSMONITOR_SERVICES_STRICT=1 makes it fatal
# (the default once tests depend on the services).
STRICT=${DNSMONITOR_SERVICES_STRICT:-0}
problem() {
    echo "services: $*" >&2
    if [[ $STRICT == 1 ]]; then
        exit 1
    fi
    echo "services: WARNING: continuing without it (set DNSMONITOR_SERVICES_STRICT=1 to fail)" >&2
}

port_open() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# ---------------------------------------------------------------- RabbitMQ
if port_open 127.0.0.1 5672; then
    echo "services: RabbitMQ already answers on 127.0.0.1:5672"
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
        port_open 127.0.0.1 5672 && break
        sleep 0.1
    done
    if port_open 127.0.0.1 5672; then
        echo "services: RabbitMQ ready on 127.0.0.1:5672"
    else
        problem "RabbitMQ started but 127.0.0.1:5672 does not accept"
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
        problem "127.0.0.1:2181 is in use but does not answer ruok with imok" \
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
    /usr/share/zookeeper/bin/zkServer.sh start "$ZK/zoo.cfg" || problem "zkServer.sh start failed"
    for _ in $(seq 1 150); do # at most ~30 s
        zk_ok && break
        sleep 0.2
    done
    if zk_ok; then
        echo "services: ZooKeeper ready on 127.0.0.1:2181"
    else
        problem "ZooKeeper did not answer imok within 30 s (see /var/log/zookeeper)"
    fi
fi
