// roslibjs (npm `roslib` 2.x) against the simulated cell: an independent client of the rosbridge v2 server.
// Usage: node roslibjs_conformance.mjs PORT NODE_DIR   (NODE_DIR holds node_modules/roslib and, on Node < 22, ws)
// Prints one JSON object with what each check saw; the pytest side asserts on it.
import { pathToFileURL } from "node:url";
import path from "node:path";

const [port, nodeDir] = process.argv.slice(2);
const ROSLIB = await import(pathToFileURL(path.join(nodeDir, "node_modules/roslib/dist/RosLib.js")).href);
const url = `ws://127.0.0.1:${port}`;
const out = {};
const timer = setTimeout(() => { out.timeout = true; finish(1); }, 20000);

function finish(code) {
  clearTimeout(timer);
  console.log(JSON.stringify(out));
  process.exit(code);
}

function connect() {
  return new Promise((resolve, reject) => {
    const ros = new ROSLIB.Ros({ url });
    ros.on("connection", () => resolve(ros));
    ros.on("error", (e) => reject(new Error(`connection error ${e}`)));
  });
}

function call(ros, name, type, args) {
  return new Promise((resolve) => {
    const s = new ROSLIB.Service({ ros, name, serviceType: type });
    s.callService(args, (v) => resolve({ ok: true, values: v }), (e) => resolve({ ok: false, error: String(e) }));
  });
}

function goal(ros, args) {
  return new Promise((resolve) => {
    const a = new ROSLIB.Action({ ros, name: "/scaled_joint_trajectory_controller/follow_joint_trajectory",
      actionType: "control_msgs/action/FollowJointTrajectory" });
    let feedback = 0;
    a.sendGoal(args, (r) => resolve({ ok: true, result: r, feedback }), () => { feedback += 1; },
      (e) => resolve({ ok: false, error: String(e), feedback }));
  });
}

try {
  const ros = await connect();
  const ros2 = await connect();

  // a topic of the cell
  const js = await new Promise((resolve) => {
    const t = new ROSLIB.Topic({ ros, name: "/joint_states", messageType: "sensor_msgs/msg/JointState" });
    t.subscribe((m) => { t.unsubscribe(); resolve(m); });
  });
  out.joint_names = js.name;
  out.position = js.position;

  // services: the cell's, and one that does not exist
  out.goal_status = await call(ros, "/gluecell/goal_status", "gluecell_msgs/srv/GoalStatus", { goal_id: "never-sent" });
  out.missing_service = await call(ros, "/no/such/service", "std_srvs/srv/Trigger", {});

  // a client-to-client topic and a client-advertised service (forwarded by the server)
  const chatterIn = new ROSLIB.Topic({ ros: ros2, name: "/js/chatter", messageType: "std_msgs/msg/String" });
  const got = new Promise((resolve) => chatterIn.subscribe((m) => resolve(m.data)));
  const chatterOut = new ROSLIB.Topic({ ros, name: "/js/chatter", messageType: "std_msgs/msg/String" });
  await new Promise((r) => setTimeout(r, 200));
  chatterOut.publish({ data: "hello from roslibjs" });
  out.chatter = await got;
  const adder = new ROSLIB.Service({ ros, name: "/js/add", serviceType: "example_interfaces/srv/AddTwoInts" });
  await adder.advertise((req, resp) => { resp.sum = req.a + req.b; return true; });
  await new Promise((r) => setTimeout(r, 200));
  out.add = await call(ros2, "/js/add", "example_interfaces/srv/AddTwoInts", { a: 20, b: 22 });

  // the action: a small move from the current position, and one beyond the joint limits
  const names = js.name;
  const q1 = js.position.map((x, i) => (i === 0 ? x + 0.2 : x));
  out.goal_ok = await goal(ros, { trajectory: { joint_names: names,
    points: [{ positions: q1, time_from_start: { sec: 1, nanosec: 0 } }] } });
  const far = js.position.map((x, i) => (i === 1 ? 7.5 : x));
  out.goal_bad = await goal(ros, { trajectory: { joint_names: names,
    points: [{ positions: far, time_from_start: { sec: 5, nanosec: 0 } }] } });
  finish(0);
} catch (e) {
  out.exception = String(e);
  finish(1);
}
