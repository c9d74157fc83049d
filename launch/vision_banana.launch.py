"""Launch the vision_banana lifecycle node (it configures and activates itself: autostart).

ros2 launch vision_banana_ros vision_banana.launch.py camera:=/camera/color \
    model_path:=/path/model.pt backend:=auto

Arguments: namespace, camera (namespace of the camera's image and camera_info), image_topic,
camera_info_topic, params_file, model_path, backend, use_sim_time. No side effects here: the
launch description only declares arguments and one node.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import LifecycleNode

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("vision_banana_ros")
    default_params = os.path.join(share, "config", "vision_banana.yaml")
    args = [
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the node"),
        DeclareLaunchArgument("camera", default_value="/camera/color",
                              description="Namespace of the camera topics"),
        DeclareLaunchArgument("image_topic", default_value="image_raw",
                              description="Image topic under the camera namespace"),
        DeclareLaunchArgument("camera_info_topic", default_value="camera_info",
                              description="CameraInfo topic under the camera namespace"),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML parameters file"),
        DeclareLaunchArgument("model_path", default_value="",
                              description="Model checkpoint or ONNX (empty: shipped model)"),
        DeclareLaunchArgument("backend", default_value="auto",
                              description="auto, tensorrt, onnxruntime or torch"),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Use /clock (rosbag replay)"),
    ]
    camera = LaunchConfiguration("camera")
    image = PythonExpression(["'", camera, "/' + '", LaunchConfiguration("image_topic"), "'"])
    info = PythonExpression(["'", camera, "/' + '", LaunchConfiguration("camera_info_topic"),
                             "'"])
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
             "use_sim_time": PythonExpression(["'", LaunchConfiguration("use_sim_time"),
                                               "'.lower() == 'true'"])},
        ],
        remappings=[
            ("image", image),
            ("image/compressed", PythonExpression(["'", image, "/compressed'"])),
            ("camera_info", info),
        ],
    )
    return LaunchDescription([*args, node])
