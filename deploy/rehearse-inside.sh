#!/bin/bash
# Runs inside the fresh Debian 12 of deploy/rehearse.sh: docs/部署.md section by section, with its own
# blocks (in /root/guide, written by deploy/guide_blocks.py), and a check of what each step promises.
# Where the chroot differs from a server (no systemd, no syslog, no real domain), the substitution is
# printed with "替换：".
set -euo pipefail
G=/root/guide
NEW_TAG=${NEW_TAG:?}
OLD_TAG=${OLD_TAG:?}
PASSWORD='p$ss word@1'   # a database password with a dollar, a space and an @ (section 3's advice)
ADMIN_PASSWORD='Rehearsal-Pass-1'
step() { printf '\n===== %s\n' "$*"; }
ok() { printf '  ✓ %s\n' "$*"; }
fail() { printf '  ✗ %s\n' "$*"; exit 1; }
note() { printf '  替换：%s\n' "$*"; }
healthy() {  # /healthz answers 200 within 40 s (the processes' first heartbeats)
    for _ in $(seq 1 80); do
        code=$(curl -s -o /tmp/healthz -w '%{http_code}' http://127.0.0.1:8000/healthz || true)
        [ "$code" = 200 ] && { ok "healthz 200: $(cat /tmp/healthz)"; return 0; }
        sleep 0.5
    done
    fail "healthz $code: $(cat /tmp/healthz 2>/dev/null)"
}

# Phase install needs the network (apt, pip); phase run starts the services and runs in a network
# namespace of its own (deploy/rehearse.sh), so that this machine's PostgreSQL, Redis and ports are not in the way.
install_steps() {
    step "0. 一台最小安装的 Debian 12"
    grep -q 'VERSION_ID="12"' /etc/os-release && ok "Debian 12" || fail "没有做到：Debian 12"
    for tool in sudo cron curl; do
        command -v $tool >/dev/null && fail "$tool already there" || ok "没有 $tool（所以安装那一行里要有它）"
    done

    step "2. 安装（第一段，Debian 的几行）"
    sed '/^# openEuler/,$d' $G/sec2-1.bash > /tmp/apt.sh
    DEBIAN_FRONTEND=noninteractive bash -euxo pipefail /tmp/apt.sh > /var/log/apt-step.log 2>&1 || { tail -20 /var/log/apt-step.log; fail "安装失败"; }
    command -v sudo >/dev/null && command -v cron >/dev/null && command -v curl >/dev/null && ok "sudo、cron、curl 已安装" || fail "没有做到：sudo、cron、curl 已安装"
    [ -s /run/crond.pid ] && kill -0 "$(cat /run/crond.pid)" && ok "cron 在运行" || fail "cron 没有运行"
    [ ! -e /etc/nginx/sites-enabled/default ] && ok "Debian 的默认站点已删除" || fail "没有做到：Debian 的默认站点已删除"

    step "2. 安装（第二段：用户、代码、依赖、目录）"
    sed -e "s#<仓库地址>#/srv/wxbot.git#" $G/sec2-2.bash > /tmp/install.sh
    note "仓库地址 = 本机仓库的只读副本 /srv/wxbot.git"
    bash -euxo pipefail /tmp/install.sh > /var/log/install-step.log 2>&1 || { tail -30 /var/log/install-step.log; fail "安装失败"; }
    cd /opt/wxbot
    [ "$(git describe --tags)" = "$NEW_TAG" ] && ok "检出的是最新发布 $NEW_TAG" || fail "没有做到：检出的是最新发布 $NEW_TAG"
    [ "$(stat -c %U:%a /var/backups/wxbot)" = "wxbot:700" ] && ok "备份目录 wxbot 700" || fail "没有做到：备份目录 wxbot 700"

}

run_steps() {
    cd /opt/wxbot
    # Packages were installed beside this machine's own PostgreSQL, so pg_createcluster picked the
    # next free port; a fresh server has 5432 free.
    sed -i 's/^port = .*/port = 5432/' /etc/postgresql/15/main/postgresql.conf
    note "PostgreSQL 的端口改回 5432（安装时本机的 5432 被占用，pg_createcluster 选了别的）"
    systemctl start postgresql redis-server
    note "postgresql、redis-server 由 systemctl 替身启动（chroot 里没有 systemd）"

    step "2. 数据库"
    PASSWORD="$PASSWORD" python3.11 - <<'EOF'
import os, shlex
text = open("/root/guide/sec2-3.bash", encoding="utf-8").read().splitlines()
create = "sudo -u postgres psql -q -c " + shlex.quote(f"CREATE ROLE wxbot LOGIN PASSWORD '{os.environ['PASSWORD']}'")
lines = [create if line.startswith("sudo -u postgres createuser wxbot -P") else line for line in text]
open("/tmp/db.sh", "w", encoding="utf-8").write("\n".join(lines) + "\n")
EOF
    note "createuser -P 的交互输入改为 CREATE ROLE，密码 $PASSWORD"
    bash -euxo pipefail /tmp/db.sh
    # Password authentication for real: trust would hide a wrongly written password.
    grep -q '^host.*127.0.0.1/32.*scram-sha-256' /etc/postgresql/15/main/pg_hba.conf && ok "127.0.0.1 用密码认证" || fail "没有做到：127.0.0.1 用密码认证"

    step "3. 环境文件"
    ENCODED=$(python3.11 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$PASSWORD")
    SECRET=$(python3.11 -c 'import secrets; print(secrets.token_hex(32))')
    sed -e "s#数据库密码#$ENCODED#" -e "s#换成生成的64位十六进制串#$SECRET#" -e '/^WXBOT_WECHAT__/d' $G/sec3-1.txt > /etc/wxbot.env
    note "密码按第 3 节百分号编码为 $ENCODED；去掉 WXBOT_WECHAT__ 几行（先用沙盒试运行）"
    chown root:wxbot /etc/wxbot.env && chmod 640 /etc/wxbot.env
    grep -q "METRICS_ALLOW='\[" /etc/wxbot.env && ok "METRICS_ALLOW 加了单引号" || fail "没有做到：METRICS_ALLOW 加了单引号"

    step "3. 服务还没启动过：bin/wxbot 命令"
    [ ! -e /run/wxbot ] && ok "/run/wxbot 不存在（刚装好 / 重启之后）" || fail "没有做到：/run/wxbot 不存在（刚装好 / 重启之后）"
    cp /srv/wxbot.git/deploy/名单.csv /root/名单.xlsx.csv
    python3.11 - <<'EOF'
import csv, subprocess
rows = list(csv.reader(open("/root/名单.xlsx.csv", encoding="utf-8")))
subprocess.run(["/opt/wxbot/.venv/bin/python", "-c", "import sys, openpyxl; b = openpyxl.Workbook(); "
                "[b.active.append(r) for r in eval(sys.argv[1])]; b.save('/root/名单.xlsx')", repr(rows)], check=True)
EOF
    chmod 600 /root/名单.xlsx
    if sudo -u wxbot bin/wxbot roster import /root/名单.xlsx > /tmp/out 2>&1; then fail "读到了 /root 下的文件？"; fi
    grep -q "没有权限读取" /tmp/out && ok "roster import /root/名单.xlsx：$(tail -1 /tmp/out)" || fail "没有做到：roster import /root/名单.xlsx：$(tail -1 /tmp/out)"
    cd /root
    sed -e "s#--role admin #--role admin --password '$ADMIN_PASSWORD' #" \
        -e "s#^cp 名单.xlsx#cp /root/名单.xlsx#" -e '/menu sync/d' $G/sec3-2.bash > /tmp/commands.sh
    note "admin create 加 --password；menu sync 留到服务启动后"
    bash -euxo pipefail /tmp/commands.sh > /tmp/out 2>&1 || { cat /tmp/out; fail "第 3 节的命令失败"; }
    cd /opt/wxbot
    grep -q "导入完成：新增 3 人" /tmp/out && ok "名单导入：$(grep 导入完成 /tmp/out)" || fail "没有做到：名单导入：$(grep 导入完成 /tmp/out)"
    [ "$(grep -c 已创建管理员账号 /tmp/out)" = 2 ] && ok "两个管理员" || fail "没有做到：两个管理员"
    [ ! -e /run/wxbot ] && ok "命令没有需要、也没有留下 /run/wxbot/metrics" || fail "没有做到：命令没有需要、也没有留下 /run/wxbot/metrics"

    step "4. systemd 单元"
    cp $G/sec4-1.ini /etc/systemd/system/wxbot-web.service
    for unit in scheduler:sec4-2 worker@:sec4-3; do
        name=wxbot-${unit%%:*}; block=$G/${unit##*:}.ini
        python3.11 - "$block" "/etc/systemd/system/$name.service" <<'EOF'
import sys
web = open("/etc/systemd/system/wxbot-web.service", encoding="utf-8").read().splitlines()
changes = dict(line.split("=", 1) for line in open(sys.argv[1], encoding="utf-8").read().splitlines() if "=" in line)
out = [f"{line.split('=', 1)[0]}={changes[line.split('=', 1)[0]]}" if line.split("=", 1)[0] in changes else line
       for line in web]
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(out) + "\n")
EOF
    done
    ok "wxbot-scheduler、wxbot-worker@ 按“与上面相同，但”写成"
    bash -euxo pipefail $G/sec4-4.bash > /tmp/out 2>&1 || { cat /tmp/out; fail "第 4 节的命令失败"; }
    healthy
    [ "$(stat -c %U /run/wxbot/metrics)" = wxbot ] && ok "/run/wxbot/metrics 由服务建好，属 wxbot" || fail "没有做到：/run/wxbot/metrics 由服务建好，属 wxbot"
    sleep 1
    if [ -n "$(grep -v '^{' /var/log/rehearsal/wxbot-web.log)" ]; then
        grep -v '^{' /var/log/rehearsal/wxbot-web.log | head -5; fail "web 日志里有不是 JSON 的行"
    fi
    ok "web 服务的每一行日志都是 JSON（$(wc -l < /var/log/rehearsal/wxbot-web.log) 行）"
    grep -q "Control server" /var/log/rehearsal/wxbot-web.log && fail "gunicorn 控制套接字报错" || ok "没有 Control server error"
    sudo -u wxbot bin/wxbot menu sync > /tmp/out 2>&1 && ok "menu sync（沙盒，本机地址）：$(tail -1 /tmp/out)" \
        || { cat /tmp/out; fail "menu sync"; }

    step "5. nginx"
    mkdir -p /etc/nginx/certs
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=dangjian.example.edu.cn -keyout /etc/nginx/certs/dangjian.key \
        -out /etc/nginx/certs/dangjian.pem 2>/dev/null
    note "学校证书 = 自签名证书"
    cp $G/sec5-1.nginx /etc/nginx/conf.d/wxbot.conf
    nginx -t 2>/dev/null && systemctl reload nginx && ok "nginx -t 通过，已启动" || fail "没有做到：nginx -t 通过，已启动"
    SITE="--resolve dangjian.example.edu.cn:443:127.0.0.1 --resolve dangjian.example.edu.cn:80:127.0.0.1 -k"
    code() { curl -s -o /dev/null -w '%{http_code}' $SITE "$@"; }
    [ "$(code https://dangjian.example.edu.cn/healthz)" = 200 ] && ok "https://域名/healthz 200" || fail "没有做到：https://域名/healthz 200"
    [ "$(code https://dangjian.example.edu.cn/metrics)" = 404 ] && ok "/metrics 对外 404" || fail "没有做到：/metrics 对外 404"
    [ "$(code http://dangjian.example.edu.cn/)" = 301 ] && ok "80 跳 443" || fail "没有做到：80 跳 443"
    [ "$(code http://127.0.0.1/)" = 301 ] && ok "用 IP 访问 80 也落到 wxbot 的站点（没有 Debian 默认页）" || fail "没有做到：用 IP 访问 80 也落到 wxbot 的站点（没有 Debian 默认页）"
    Q='?signature=s&timestamp=1&nonce=2&openid=oRehearsalSecret&encrypt_type=aes&msg_signature=m'
    [ "$(code -X POST --data-binary @/opt/wxbot/requirements.txt https://dangjian.example.edu.cn/wechat$Q)" = 200 ] || true
    head -c 100000 /dev/zero > /tmp/big
    [ "$(code -X POST --data-binary @/tmp/big "https://dangjian.example.edu.cn/wechat$Q")" = 413 ] && ok "/wechat 大于 64k：413" || fail "没有做到：/wechat 大于 64k：413"
    systemctl stop wxbot-web
    [ "$(code -X POST -d '<xml/>' "https://dangjian.example.edu.cn/wechat$Q")" = 502 ] && ok "web 停着：502" || fail "没有做到：web 停着：502"
    systemctl start wxbot-web
    sleep 0.5
    grep -rq oRehearsalSecret /var/log/nginx/ && fail "nginx 日志里有 openid" || ok "nginx 的访问日志和错误日志里都没有 openid"
    grep -q oRehearsalSecret /var/log/rehearsal/*.log && fail "wxbot 日志里有 openid" || ok "wxbot 日志里也没有"
    healthy

    step "6. PostgreSQL 连接数"
    sed -i 's/^max_connections = 100/max_connections = 200/' /etc/postgresql/15/main/postgresql.conf
    systemctl restart postgresql && ok "max_connections = 200" || fail "没有做到：max_connections = 200"
    healthy

    step "沙盒试运行：发送走本机地址，不经过域名"
    PHONE=http://127.0.0.1:8000/sandbox/phone
    post() { curl -s -X POST -H 'Content-Type: application/json' -d "$1" $PHONE > /dev/null; }
    post '{"openid": "oRehearsal1", "action": "follow"}'
    post '{"openid": "oRehearsal1", "action": "text", "text": "绑定 2026001 王演练"}'
    sudo -u wxbot bin/wxbot broadcast send --text "演练通知" --all --yes > /tmp/out 2>&1 || { cat /tmp/out; fail "群发"; }
    ID=$(grep -o '#[0-9]*' /tmp/out | head -1 | tr -d '#')
    for _ in $(seq 1 40); do sudo -u wxbot bin/wxbot broadcast status "$ID" > /tmp/status 2>&1; grep -q "已送达 1" /tmp/status && break; sleep 1; done
    grep -q "已送达 1" /tmp/status && ok "命令行群发 #$ID 已送达（域名 https://dangjian.example.edu.cn 在这里解析不到）" || { cat /tmp/status; fail "没有送达"; }
    RID=$(sudo -u postgres psql -tA wxbot -c "select request_id from campaigns where id = $ID")
    grep -q "\"request_id\": \"$RID\"" /var/log/rehearsal/wxbot-worker@*.log && ok "发送进程的日志带着命令行的 request_id $RID" || fail "没有做到：发送进程的日志带着命令行的 request_id $RID"

    step "8. 备份（cron）"
    cp $G/sec8-1.bash /etc/cron.d/wxbot-backup
    LINE=$(grep -v '^#' /etc/cron.d/wxbot-backup | grep .)
    USER_FIELD=$(echo "$LINE" | awk '{print $6}'); COMMAND=$(echo "$LINE" | cut -d' ' -f7-)
    note "不等到 02:30：以 cron 行里的用户 $USER_FIELD 运行它的命令；logger 换成写文件（chroot 里没有 syslog）"
    runuser -u "$USER_FIELD" -- sh -c "${COMMAND/logger -t wxbot-backup/cat > /tmp/backup.log}"
    grep -q 已备份 /tmp/backup.log && ok "$(cat /tmp/backup.log)" || fail "没有做到：$(cat /tmp/backup.log)"
    [ -z "$(find /var/backups/wxbot -type f ! -perm 600)" ] && ok "备份文件都是 600" || fail "没有做到：备份文件都是 600"
    sudo -u wxbot bin/wxbot backup status > /tmp/out && ok "backup status：$(head -1 /tmp/out)" || fail "没有做到：backup status：$(head -1 /tmp/out)"

    step "8. 恢复"
    DUMP=$(ls /var/backups/wxbot/wxbot-*.dump | tail -1); FILES=$(ls /var/backups/wxbot/files-*.tgz | tail -1)
    python3.11 - "$DUMP" "$FILES" <<'EOF'
import sys
text = open("/root/guide/sec8-2.bash", encoding="utf-8").read()
text = text.replace("/var/backups/wxbot/wxbot-2026-11-26-0230.dump", sys.argv[1])
text = text.replace("/var/backups/wxbot/files-2026-11-26-0230.tgz", sys.argv[2])
switch = "sed -i \"s#/wxbot'\\$#/wxbot_restore'#\" /etc/wxbot.env"
lines = [switch if line.startswith("# 把 /etc/wxbot.env") else line for line in text.splitlines()]
open("/tmp/restore.sh", "w", encoding="utf-8").write("\n".join(lines) + "\n")
EOF
    note "备份文件名换成刚才的；“改 WXBOT_DATABASE_URL”用 sed"
    bash -euxo pipefail /tmp/restore.sh > /tmp/out 2>&1 || { cat /tmp/out; fail "恢复"; }
    grep -q "wxbot_restore'" /etc/wxbot.env && healthy
    [ "$(sudo -u postgres psql -tA wxbot_restore -c "select count(*) from members")" = 3 ] && ok "恢复的库里有名单的 3 人" || fail "没有做到：恢复的库里有名单的 3 人"
    systemctl stop wxbot-web wxbot-scheduler 'wxbot-worker@*'
    sed -i "s@/wxbot_restore'\$@/wxbot'@" /etc/wxbot.env
    systemctl start wxbot-web wxbot-scheduler wxbot-worker@1 wxbot-worker@2

    step "重启机器：/run 清空，命令先于服务"
    systemctl stop wxbot-web wxbot-scheduler 'wxbot-worker@*'
    rm -rf /run/wxbot
    cd /opt/wxbot
    sudo -u wxbot bin/wxbot db upgrade > /tmp/out 2>&1 && ok "db upgrade：$(tail -1 /tmp/out)" || { cat /tmp/out; fail "db upgrade"; }
    [ ! -e /run/wxbot ] && ok "没有留下 /run/wxbot" || fail "没有做到：没有留下 /run/wxbot"
    systemctl start wxbot-web wxbot-scheduler wxbot-worker@1 wxbot-worker@2
    healthy

    step "9. 回滚到 $OLD_TAG（先用新代码降级数据库）"
    # The copy section 9 says to keep before upgrading: the old version knows no backup.* settings.
    grep -v '^WXBOT_BACKUP__' /etc/wxbot.env > /etc/wxbot.env.$OLD_TAG
    cp -p /etc/wxbot.env /etc/wxbot.env.$NEW_TAG
    note "/etc/wxbot.env.$OLD_TAG = 升级前留下的环境文件（没有 $NEW_TAG 新增的 WXBOT_BACKUP__DIR）"
    sed -e "s/v2026.11.0/$OLD_TAG/g" $G/sec9-2.bash > /tmp/rollback.sh
    REV=$(git ls-tree --name-only "$OLD_TAG" migrations/versions/ | sed 's#.*/##' | sort | tail -1 | cut -d_ -f1)
    sed -i -e "s#db downgrade 0016#db downgrade $REV#" /tmp/rollback.sh
    note "降级的版本号用第 1 步算出的 $REV；db downgrade 的确认回答 y"
    # The answers from a file, not `yes |`: under pipefail, yes ends by SIGPIPE and the step would "fail".
    printf 'y\n%.0s' $(seq 20) > /tmp/answers
    bash -euxo pipefail /tmp/rollback.sh < /tmp/answers > /tmp/out 2>&1 || { cat /tmp/out; fail "回滚"; }
    [ "$(git describe --tags)" = "$OLD_TAG" ] && ok "代码回到 $OLD_TAG，数据库版本 $REV" || fail "没有做到：代码回到 $OLD_TAG，数据库版本 $REV"
    healthy

    step "9. 再升级到 $NEW_TAG"
    sed -e "s/v2026.12.0/@NEW@/g" -e "s/v2026.11.0/$OLD_TAG/g" -e "s/@NEW@/$NEW_TAG/g" \
        -e 's#^sudo -u wxbot bin/wxbot backup run .*#sudo -u postgres pg_dump -Fc -f /tmp/before-upgrade.dump wxbot#' \
        $G/sec9-1.bash > /tmp/upgrade.sh
    note "$OLD_TAG 还没有 backup run：按第 9 节的说明改用 pg_dump；新增的设置从 /etc/wxbot.env.$NEW_TAG 加回"
    sed -i "s#^sudo -u wxbot bin/wxbot db upgrade#cp -p /etc/wxbot.env.$NEW_TAG /etc/wxbot.env \&\& sudo -u wxbot bin/wxbot db upgrade#" /tmp/upgrade.sh
    bash -euxo pipefail /tmp/upgrade.sh > /tmp/out 2>&1 || { cat /tmp/out; fail "升级"; }
    [ "$(git describe --tags)" = "$NEW_TAG" ] && ok "代码是 $NEW_TAG" || fail "没有做到：代码是 $NEW_TAG"
    healthy
    sudo -u wxbot bin/wxbot broadcast status "$ID" > /tmp/status && grep -q "已送达 1" /tmp/status && ok "回滚又升级之后，之前的群发记录还在" || fail "没有做到：回滚又升级之后，之前的群发记录还在"

    printf '\n演练完成：部署指南从安装到回滚的每一步都照做并检查过。\n'
}

case "${1:?install 或 run}" in
    install) install_steps ;;
    run) run_steps ;;
esac
