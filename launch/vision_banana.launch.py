"""Launch the vision_banana lifecycle node (it configures and activates itself: autostart).

ros2 launch vision_banana_ros vision_banana.launch.py camera:=/camera \
    model_path:=/path/model.pt backend:=auto

Arguments: namespace, camera (namespace of the camera driver, RealSense layout), image_topic,
camera_info_topic, depth_topic (the camera's depth aligned to colour; empty: RGB only),
params_file, model_path, backend, use_sim_time, fastdds_profile, and the support plane of a
camera without depth (the metric scale anchor, README): support_frame (a TF frame whose
z = 0 plane is the table: a wrist camera), support_plane_topic (geometry_msgs/PoseStamped in
the camera's optical frame), support_plane_static ("nx ny nz d": a fixed camera).

fastdds_profile (default: the shipped config/fastdds_large_frames.xml) is exported as
FASTRTPS_DEFAULT_PROFILES_FILE for this launch: the node and every node launched after it in
the same launch (put the camera driver after this file, or export the variable for the whole
robot) get a shared-memory segment that carries camera frames whole. Empty: Fast DDS defaults.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("vision_banana_ros")
    default_params = os.path.join(share, "config", "vision_banana.yaml")
    default_profile = os.path.join(share, "config", "fastdds_large_frames.xml")
    args = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the node"),
        DeclareLaunchArgument("camera", default_value="/camera",
                              description="Namespace of the camera driver's topics"),
        DeclareLaunchArgument("image_topic", default_value="color/image_raw",
                              description="Colour image topic under the camera namespace"),
        DeclareLaunchArgument("camera_info_topic", default_value="color/camera_info",
                              description="CameraInfo topic under the camera namespace"),
        DeclareLaunchArgument("depth_topic", default_value="aligned_depth_to_color/image_raw",
                              description="Depth aligned to colour under the camera namespace "
                                          "(the node's depth_input parameter decides its use)"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML parameters file"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="Model checkpoint or ONNX (empty: shipped model)"),
        DeclareLaunchArgument("backend", default_value="auto",
                              description="auto, tensorrt, onnxruntime or torch"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Use /clock (rosbag replay)"),
        DeclareLaunchArgument("support_frame", default_value="",
                              description="TF frame whose z = 0 plane is the support surface"),
        DeclareLaunchArgument("support_plane_topic", default_value="support_plane",
                              description="geometry_msgs/PoseStamped of the support plane"),
        DeclareLaunchArgument("support_plane_static", default_value="",
                              description="'nx ny nz d' support plane of a fixed camera"),
        DeclareLaunchArgument("fastdds_profile", default_value=default_profile,
                              description="Fast DDS XML profile exported for this launch "
                                          "(empty: Fast DDS defaults)"),
    ]
    camera = LaunchConfiguration("camera")

    def under_camera(name: str) -> PythonExpression:
        return PythonExpression(["'", camera, "/' + '", LaunchConfiguration(name), "'"])

    image = under_camera("image_topic")
    profile = LaunchConfiguration("fastdds_profile")
    node = LifecycleNode(
        package="vision_banana_ros",
        executable="vision_banana_node",
        name="vision_banana",
        namespace=LaunchConfiguration("namespace"),
        output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {"model_path": LaunchConfiguration("model_path"),
             "backend": LaunchConfiguration("backend"),
             "support_frame": LaunchConfiguration("support_frame"),
             "support_plane_static": LaunchConfiguration("support_plane_static"),
             "use_sim_time": PythonExpression(["'", LaunchConfiguration("use_sim_time"),
                                               "'.lower() == 'true'"])},
        ],
        remappings=[
            ("image", image),
            ("image/compressed", PythonExpression(["'", image, "/compressed'"])),
            ("camera_info", under_camera("camera_info_topic")),
            ("depth/image", under_camera("depth_topic")),
            ("support_plane", LaunchConfiguration("support_plane_topic")),
        ],
    )
    set_profile = SetEnvironmentVariable(
        "FASTRTPS_DEFAULT_PROFILES_FILE", profile,
        condition=IfCondition(PythonExpression(["'", profile, "' != ''"])))
    return LaunchDescription([*args, set_profile, node])
